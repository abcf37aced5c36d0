// Package overlayfs is the one place that knows how overlayfs writes a
// deletion down in a folder (the kernel's
// Documentation/filesystems/overlayfs.rst): a deleted path is a char 0/0
// device node (or, on xwhiteout-capable kernels, an empty file with the
// whiteout xattr), and a folder that hides everything below it has the
// opaque xattr "y", in the trusted.overlay. namespace for privileged
// mounts or user.overlay. for userxattr (rootless) ones. Upper dirs,
// committed layers and unpacked bases are in this form; storage/layer
// translates it to and from the OCI form of tar layers, and the sandbox
// writes it for import masks.
package overlayfs

import (
	"io/fs"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The xattr namespaces of overlayfs.
const (
	TrustedNamespace = "trusted.overlay."
	UserNamespace    = "user.overlay."
)

// Overlayfs's own xattr names, relative to a namespace.
const (
	Opaque    = "opaque"
	Redirect  = "redirect"
	Metacopy  = "metacopy"
	XWhiteout = "whiteout"
)

// Namespace is the xattr namespace of an overlay mounted with userxattr
// (rootless) or without.
func Namespace(userXattr bool) string {
	if userXattr {
		return UserNamespace
	}
	return TrustedNamespace
}

// IsXattr reports one of overlayfs's xattrs, in either namespace: its
// bookkeeping (opaque, origin, impure, nlink, ...) is never part of an
// image, being interpreted by strata or meaningless outside the overlay
// that wrote it.
func IsXattr(name string) bool {
	return strings.HasPrefix(name, TrustedNamespace) || strings.HasPrefix(name, UserNamespace)
}

// IsWhiteout reports a char 0/0 whiteout.
func IsWhiteout(info fs.FileInfo) bool {
	if info.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// IsWhiteoutStat is IsWhiteout of what lstat(2) said.
func IsWhiteoutStat(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// MakeWhiteout writes a whiteout at path, which must not exist.
func MakeWhiteout(path string) error { return unix.Mknod(path, unix.S_IFCHR, 0) }

// IsOpaque reports a folder marked opaque, in either namespace.
func IsOpaque(dir string) bool {
	return HasOpaque(dir, TrustedNamespace) || HasOpaque(dir, UserNamespace)
}

// HasOpaque reports a folder marked opaque in namespace.
func HasOpaque(dir, namespace string) bool {
	var b [2]byte
	n, err := unix.Lgetxattr(dir, namespace+Opaque, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}
