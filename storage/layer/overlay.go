package layer

import (
	"io/fs"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file is the one place that knows how deletions are written down.
// A layer folder (an overlay upper dir, a committed layer, an unpacked
// base) is in overlay form (the kernel's Documentation/filesystems/
// overlayfs.rst): a deleted path is a char 0/0 device node (or, on
// xwhiteout-capable kernels, an empty file with the whiteout xattr), and
// a folder that hides everything below it has the opaque xattr "y", in
// the trusted.overlay. namespace for privileged mounts or user.overlay.
// for userxattr (rootless) ones. A tar layer is in OCI form (image-spec
// layer.md): a deleted path is an empty entry named .wh.NAME and an
// opaque folder holds the entry .wh..wh..opq.

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// The overlay xattr namespaces.
const (
	trustedOverlay = "trusted.overlay."
	userOverlay    = "user.overlay."
)

// Overlay's own xattr names, relative to a namespace.
const (
	ovlOpaque   = "opaque"
	ovlRedirect = "redirect"
	ovlMetacopy = "metacopy"
	ovlWhiteout = "whiteout"
)

// overlayNamespace is the xattr namespace of an overlay mounted with
// userxattr (rootless) or without.
func overlayNamespace(userXattr bool) string {
	if userXattr {
		return userOverlay
	}
	return trustedOverlay
}

// isOverlayXattr reports one of overlay's xattrs, in either namespace:
// its bookkeeping (opaque, origin, impure, nlink, ...) is never part of
// an image, being interpreted by strata or meaningless outside the
// overlay that wrote it.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, trustedOverlay) || strings.HasPrefix(name, userOverlay)
}

// IsWhiteout reports a char 0/0 whiteout of a folder in overlay form.
func IsWhiteout(info fs.FileInfo) bool {
	if info.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// IsOpaque reports a folder marked opaque, in either namespace.
func IsOpaque(dir string) bool {
	return hasOpaque(dir, trustedOverlay) || hasOpaque(dir, userOverlay)
}

func hasOpaque(dir, namespace string) bool {
	var b [2]byte
	n, err := unix.Lgetxattr(dir, namespace+ovlOpaque, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}
