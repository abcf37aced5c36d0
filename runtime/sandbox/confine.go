package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// droppedCaps are never given to a step. CAP_SYS_PTRACE is the one that
// matters for the sandbox itself: pid 1 of the step's pid namespace is this
// process, whose other threads stay in the host's mount namespace and whose
// fds include host folders, so /proc/1/task/*/root and /proc/1/fd would
// lead a step back to the host. The others reach the host kernel beyond
// what building an image needs (modules, raw I/O ports, the clock, reboot,
// the kernel log, LSM policy, BPF and perf); they are the ones container
// runtimes drop by default and no package install needs them.
var droppedCaps = []uintptr{
	unix.CAP_SYS_PTRACE, unix.CAP_SYS_MODULE, unix.CAP_SYS_RAWIO, unix.CAP_SYS_BOOT,
	unix.CAP_SYS_TIME, unix.CAP_SYSLOG, unix.CAP_MAC_ADMIN, unix.CAP_MAC_OVERRIDE,
	unix.CAP_WAKE_ALARM, unix.CAP_BLOCK_SUSPEND, unix.CAP_AUDIT_CONTROL,
	unix.CAP_BPF, unix.CAP_PERFMON,
}

// confine runs on the sandbox's main thread (steps are forked from it)
// before the first step. Not dumpable, this process can be inspected through
// /proc only with CAP_SYS_PTRACE, which its children's bounding set no
// longer holds: being root in the same namespaces is not enough.
func confine() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	for _, c := range droppedCaps {
		// EINVAL: a capability this kernel does not know.
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
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
