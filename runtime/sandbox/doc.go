// Package sandbox runs an image's build steps inside Linux namespaces over an
// overlay mount, as root or rootless.
//
// It owns everything between "here are the layers and the steps" and "the
// steps ran and the upper dir holds their changes": the overlay mount, the
// container's /proc, /sys, /dev and /etc/resolv.conf, the hostname, the pivot
// into the rootfs, running each step and killing whatever it left behind,
// import copies, and an optional in-namespace finisher that commits the upper
// dir. It does not compute layers, cache keys, id maps or environments; the
// caller passes them in a [Spec].
//
// # Why a re-exec
//
// No mount is ever made in the host's mount namespace. [Run] re-executes the
// current binary (/proc/self/exe) as a child created in new mount, pid, uts
// and ipc namespaces (plus a user namespace when rootless; every step gets
// one of its own, see below); the host network
// namespace is kept. The child recognises its role in this package's init
// (environment variable _STRATA_SANDBOX), reads its spec from an inherited
// file descriptor, does all the mounting and runs the steps as pid 1 of its
// pid namespace, and exits without ever returning into the host program's
// main. Every mount therefore lives only in the child's mount namespace and
// vanishes with it, even when the child crashes or is SIGKILLed: a failed or
// interrupted build cannot leave mounts behind. Any binary that links this
// package (the strata CLI, a generated driver, a mage binary, a go test
// binary) can act as the child.
//
// Go cannot fork, so the alternative — a helper binary installed next to
// strata — would add a second artefact to ship and keep in version lock-step;
// the re-exec costs a few milliseconds per [Run].
//
// # Finishers and init order
//
// A finisher registered with [RegisterFinisher] runs inside the namespaces
// after the steps, where a rootless build can read the files its steps
// created. Finishers are registered in init functions of packages that import
// this one, and such inits run after this package's init. So when the child
// needs a finisher that is not registered yet, its init returns and lets the
// program's remaining inits run; the child starts its work from inside the
// RegisterFinisher call that supplies the name. Finishers must therefore be
// registered unconditionally from an init function (or a package-level
// variable initialiser); [Run] refuses a finisher name that is not registered
// in the calling process.
//
// # Layout inside the namespaces
//
// The child mounts the overlay at Spec.Rootfs in a private copy of the host
// mount namespace (call it M0), mounts the container's special file systems
// below it, then unshares a second mount namespace (M1) on its own thread and
// pivots into the rootfs there. After the steps the thread returns to M0
// with setns, where the finisher sees the host file system (the layer store)
// and the upper dir.
//
// # What a step can reach
//
// The child's other threads stay in M0 with the host's root, so the child
// itself is the way back to the host; everything keeps steps away from it.
// Each step is forked into a user namespace of its own that maps every id
// to itself, with its own copy of M1 (M2): the kernel locks the mounts it
// inherits, and its capabilities hold only there. The child is not
// dumpable and /proc is mounted hidepid=ptraceable, so steps do not see it;
// they get no descriptor of its, a new session keyring, and (Linux 6.12)
// a Landlock domain scoping abstract unix sockets and signals. The child's
// own file work in the rootfs (imports, the working dir, passwd lookups)
// resolves every path inside the root (inroot.go), since a symlink through
// /proc/1/task/N/root would lead it to the host. An interactive step gets a
// pty of the container's own, relayed by the child, never the caller's
// terminal.
//
// Mount points that the image lacks are supplied by an extra, bottom-most
// lower dir (the "skeleton") that the parent writes to a temporary folder:
// /proc, /sys, /dev, /.strata, /etc/resolv.conf and the destinations of
// binds. Because they come from a lower dir, creating them never touches the
// upper dir, so the layer a build produces is free of them. Only when the
// image hides a skeleton entry (a whiteout, an opaque dir, a dangling
// symlink such as /etc/resolv.conf -> /run/...) is the missing mount point
// created in the merged view; it is removed again after the steps, and the
// mtime of its parent restored, but the parent directory may remain in the
// upper dir as an otherwise unchanged copy-up.
package sandbox
