package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// droppedCaps are never given to a step. Steps run in a user namespace of
// their own, where these capabilities would not reach the host anyway; the
// drop is a second line: modules, raw I/O ports, the clock, reboot, the
// kernel log, LSM policy, BPF and perf, which container runtimes drop by
// default and no package install needs. CAP_SYS_PTRACE stays (strace and gdb
// work in a step): it holds only in the step's user namespace, and the
// sandbox process (pid 1 of the step's pid namespace, whose other threads
// and fds lead to the host) is not dumpable and belongs to the parent one,
// so a step can neither trace it nor open its /proc entries.
var droppedCaps = []uintptr{
	unix.CAP_SYS_MODULE, unix.CAP_SYS_RAWIO, unix.CAP_SYS_BOOT,
	unix.CAP_SYS_TIME, unix.CAP_SYSLOG, unix.CAP_MAC_ADMIN, unix.CAP_MAC_OVERRIDE,
	unix.CAP_WAKE_ALARM, unix.CAP_BLOCK_SUSPEND, unix.CAP_AUDIT_CONTROL,
	unix.CAP_BPF, unix.CAP_PERFMON,
}

// confine runs on the sandbox's main thread (steps are forked from it)
// before the first step. Not dumpable, this process can be inspected through
// /proc only with CAP_SYS_PTRACE in its own user namespace, which a step
// (root of a namespace below it) never has.
func confine() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	// A new anonymous session keyring: steps would otherwise possess the
	// caller's (Kerberos tickets, fscrypt and NFS keys) and could read,
	// revoke or plant keys in it. (KeyctlJoinSessionKeyring cannot pass
	// the NULL name that makes it anonymous.) Where keyctl is filtered
	// out (seccomp), steps cannot reach keyrings either.
	if _, _, errno := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0); errno != 0 && errno != unix.ENOSYS && errno != unix.EPERM && errno != unix.EACCES {
		return fmt.Errorf("keyctl(JOIN_SESSION_KEYRING): %w", errno)
	}
	for _, c := range droppedCaps {
		// EINVAL: a capability this kernel does not know.
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := scopeLandlock(); err != nil {
		return err
	}
	// A root exec gains its bounding set, but also keeps inheritable
	// capabilities: clear those (and the ambient ones with them).
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for _, c := range droppedCaps {
		data[c/32].Inheritable &^= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// landlockScopeABI is the first Landlock ABI with scoping (Linux 6.12).
const landlockScopeABI = 6

func landlockABI() int {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(abi)
}

// AbstractSocketsScoped reports whether this kernel lets strata keep steps
// away from the host's abstract unix sockets.
func AbstractSocketsScoped() bool { return landlockABI() >= landlockScopeABI }

// scopeLandlock confines this thread, and so the steps it forks, to its
// own Landlock domain for abstract unix sockets and signals. Steps share
// the host's network namespace, and with it the abstract sockets of host
// daemons, some of which trust a peer whose uid is 0 (which a root build's
// step is, its ids being mapped to themselves). No file access is
// restricted. On kernels before 6.12 this does nothing.
func scopeLandlock() error {
	if !AbstractSocketsScoped() {
		return nil
	}
	// The first three fields of struct landlock_ruleset_attr.
	attr := struct{ fs, net, scoped uint64 }{scoped: unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr), 0)
	if errno != 0 {
		return fmt.Errorf("landlock ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock: %w", errno)
	}
	return nil
}
