package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ChrootError reports that strata runs inside a chroot (a CI runner's, an
// sbuild's). The kernel refuses to create a user namespace for a process
// whose root is not the root of its mount namespace, and every step runs
// in a user namespace of its own, even as root; and mount propagation
// cannot be changed on a / that is not a mount point. Without this error
// a build fails at its first step with "operation not permitted", and
// the overlay check with "make / rslave: invalid argument", both of which
// point at the kernel rather than at the chroot.
type ChrootError struct {
	// Why says how the chroot was recognised.
	Why string
}

// Error says it is a chroot, how that was seen, and what the kernel
// refuses there; ChrootFix says what to do instead.
func (e *ChrootError) Error() string {
	return fmt.Sprintf("strata is running inside a chroot (%s): the kernel refuses user namespaces and mount propagation there", e.Why)
}

// ChrootFix names what works instead of a chroot: a root that is the root
// of its own mount namespace.
const ChrootFix = "run strata in a mount namespace of its own whose root is a mount, made with pivot_root rather than chroot " +
	"(e.g. unshare --mount --fork, bind-mount the tree onto itself, pivot_root into it), " +
	"or in a container (podman, docker, systemd-nspawn)"

// DetectChroot returns a *ChrootError when this process runs inside a
// chroot, and nil when it does not or cannot tell. It recognises
//
//   - a / that is not the root of a mount (statx's STATX_ATTR_MOUNT_ROOT,
//     which needs no /proc; a chroot into a plain folder), and
//   - a / other than pid 1's while sharing pid 1's mount namespace (a
//     chroot into a folder that is a mount point; this needs the
//     privilege to look at pid 1, so only root builds see it).
//
// A chroot into a mount point inside a private mount namespace is not
// recognised; a build there fails with the kernel's own error.
func DetectChroot() error {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, "/", unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx)
	if err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		if stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
			return &ChrootError{Why: "/ is not a mount point"}
		}
	} else if mounted, ok := rootInMountinfo(); ok && !mounted {
		// Kernels before 5.8 do not report the attribute.
		return &ChrootError{Why: "/ is not a mount point"}
	}
	if samePath("/proc/self/ns/mnt", "/proc/1/ns/mnt") && !samePath("/", "/proc/1/root") {
		return &ChrootError{Why: "/ is not the root of pid 1, whose mount namespace it shares"}
	}
	return nil
}

// rootInMountinfo reports whether /proc/self/mountinfo lists a mount on /
// (inside a chroot the kernel lists only the mounts below its root), and
// whether it could be read at all.
func rootInMountinfo() (mounted, ok bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == "/" {
			return true, true
		}
	}
	return false, sc.Err() == nil
}

// samePath reports whether a and b are the same file. Either one
// unreadable (no /proc, no privilege over pid 1) is "the same": the
// caller cannot tell a difference.
func samePath(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return true
	}
	fb, err := os.Stat(b)
	if err != nil {
		return true
	}
	return os.SameFile(fa, fb)
}
