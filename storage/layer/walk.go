package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
)

// outputForm selects how overlay whiteouts are represented in the stream.
type outputForm int

const (
	// formOCI translates overlay whiteouts to OCI .wh. entries.
	formOCI outputForm = iota
	// formOverlay keeps whiteouts as char 0/0 nodes and opaque dirs as
	// xattrs, for squashfs layers that are mounted as lowerdirs as they are.
	formOverlay
)

// entry is one tar entry in stream order. Regular files with content carry a
// prefetch job that a reader fills ahead of the tar writer.
type entry struct {
	hdr *tar.Header
	pf  *prefetch // nil unless hdr is a regular file with Size > 0
}

// walker turns an upper dir into entries in depth-first order with the names
// of every directory sorted bytewise, so parents precede children and the
// order does not depend on the file system's readdir order.
type walker struct {
	root    string
	form    outputForm
	ovl     string // active overlay xattr prefix
	epoch   time.Time
	links   map[devIno]string // first tar name of multiply-linked inodes
	xbuf    []byte
	emit    func(*entry) error
	entries int
}

type devIno struct{ dev, ino uint64 }

func newWalker(root string, form outputForm, opts WriteOptions, emit func(*entry) error) *walker {
	return &walker{root: root, form: form, ovl: overlayfs.Namespace(opts.UserXattr), epoch: opts.epoch(),
		links: map[devIno]string{}, xbuf: make([]byte, 4096), emit: emit}
}

// child is a directory member, stat'ed while the directory was open.
type child struct {
	name string
	st   unix.Stat_t
}

// readDir returns the members of dir sorted by name, with lstat data.
func readDir(dir string) ([]child, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read dir %s: %w", dir, err)
	}
	slices.Sort(names)
	fd := int(f.Fd())
	out := make([]child, len(names))
	for i, n := range names {
		out[i].name = n
		// fstatat relative to the open dir avoids resolving the full path
		// again for every member.
		if err := unix.Fstatat(fd, n, &out[i].st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("lstat %s: %w", filepath.Join(dir, n), err)
		}
	}
	return out, nil
}

// walk emits the entries below the root (the root itself is not a layer
// entry: unpacking a layer never changes the rootfs root).
func (w *walker) walk(ctx context.Context) error {
	return w.walkDir(ctx, w.root, "", false)
}

func (w *walker) walkDir(ctx context.Context, dir, rel string, inOpaque bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	children, err := readDir(dir)
	if err != nil {
		return err
	}
	for i := range children {
		c := &children[i]
		abs := filepath.Join(dir, c.name)
		name := path.Join(rel, c.name)
		if err := w.visit(ctx, abs, name, c, inOpaque); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) visit(ctx context.Context, abs, name string, c *child, inOpaque bool) error {
	st := &c.st
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFSOCK {
		return nil // sockets cannot be archived and are meaningless in images
	}
	if w.form == formOCI && strings.HasPrefix(c.name, whiteoutPrefix) {
		return fmt.Errorf("%s: names starting with %q are reserved for OCI whiteouts and cannot be stored in a tar layer", abs, whiteoutPrefix)
	}
	// Whiteouts come first: since Linux 5.8 overlay hardlinks all whiteouts
	// to one shared inode, so they must not become hardlink entries.
	if overlayfs.IsWhiteoutStat(st) {
		return w.whiteout(name, st, inOpaque)
	}
	xattrs, opaque, xwhiteout, err := w.xattrs(abs, mode == unix.S_IFDIR)
	if err != nil {
		return err
	}
	if xwhiteout && mode == unix.S_IFREG && st.Size == 0 {
		return w.whiteout(name, st, inOpaque)
	}

	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: w.clamp(st.Mtim.Sec),
		Format:  tar.FormatPAX,
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = xattrs
	}
	var e entry
	switch mode {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		target, err := os.Readlink(abs)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", abs, err)
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if mode == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("%s: unsupported file type %#o", abs, mode)
	}
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		key := devIno{uint64(st.Dev), st.Ino}
		if first, ok := w.links[key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
		} else {
			w.links[key] = name
		}
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		e.pf = &prefetch{path: abs, size: hdr.Size}
	}
	e.hdr = hdr
	if err := w.send(&e); err != nil {
		return err
	}
	if mode != unix.S_IFDIR {
		return nil
	}
	if opaque && w.form == formOCI {
		if err := w.send(&entry{hdr: w.marker(path.Join(name, opaqueMarker), st)}); err != nil {
			return err
		}
	}
	return w.walkDir(ctx, abs, name, inOpaque || opaque)
}

func (w *walker) send(e *entry) error {
	w.entries++
	return w.emit(e)
}

// whiteout emits an overlay whiteout in the output form.
func (w *walker) whiteout(name string, st *unix.Stat_t, inOpaque bool) error {
	if w.form == formOverlay {
		return w.send(&entry{hdr: &tar.Header{
			Typeflag: tar.TypeChar, Name: name, Mode: int64(st.Mode & 0o7777),
			Uid: int(st.Uid), Gid: int(st.Gid), ModTime: w.clamp(st.Mtim.Sec),
			Format: tar.FormatPAX,
		}})
	}
	if inOpaque {
		// Everything below an opaque dir is hidden already; a whiteout
		// there has no effect (umoci would skip it on extraction too).
		return nil
	}
	dir, base := path.Split(name)
	return w.send(&entry{hdr: w.marker(dir+whiteoutPrefix+base, st)})
}

// marker is an OCI whiteout entry: an empty file carrying no ownership or
// mode, as its metadata has no meaning.
func (w *walker) marker(name string, st *unix.Stat_t) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, ModTime: w.clamp(st.Mtim.Sec), Format: tar.FormatPAX}
}

func (w *walker) clamp(sec int64) time.Time {
	t := time.Unix(sec, 0)
	if t.After(w.epoch) {
		return w.epoch
	}
	return t
}

// xattrs reads the xattrs of abs as PAX records, minus overlay's own, and
// interprets the overlay xattrs of the active namespace.
func (w *walker) xattrs(abs string, isDir bool) (recs map[string]string, opaque, xwhiteout bool, err error) {
	names, err := w.list(abs)
	if err != nil || len(names) == 0 {
		return nil, false, false, err
	}
	for _, n := range bytes.Split(names, []byte{0}) {
		if len(n) == 0 {
			continue
		}
		name := string(n)
		val, err := w.get(abs, name)
		if err != nil {
			return nil, false, false, err
		}
		if strings.HasPrefix(name, w.ovl) {
			switch strings.TrimPrefix(name, w.ovl) {
			case overlayfs.Opaque:
				opaque = isDir && val == "y"
			case overlayfs.Redirect, overlayfs.Metacopy:
				return nil, false, false, fmt.Errorf("%s: has overlay xattr %s: redirected dirs and metacopy files cannot be committed (mount the overlay with redirect_dir=off,metacopy=off)", abs, name)
			case overlayfs.XWhiteout:
				xwhiteout = true
			}
		}
		if overlayfs.IsXattr(name) {
			continue
		}
		if recs == nil {
			recs = map[string]string{}
		}
		recs["SCHILY.xattr."+name] = val
	}
	if opaque && w.form == formOverlay {
		// Squashfs layers keep the opaque mark as an xattr. Both namespaces
		// are stored so the image works as a lowerdir of privileged and of
		// userxattr (rootless) overlays alike.
		if recs == nil {
			recs = map[string]string{}
		}
		recs["SCHILY.xattr."+overlayfs.TrustedNamespace+overlayfs.Opaque] = "y"
		recs["SCHILY.xattr."+overlayfs.UserNamespace+overlayfs.Opaque] = "y"
	}
	return recs, opaque, xwhiteout, nil
}

func (w *walker) list(abs string) ([]byte, error) {
	for {
		n, err := unix.Llistxattr(abs, w.xbuf)
		switch {
		case errors.Is(err, unix.ERANGE):
			w.xbuf = make([]byte, 2*len(w.xbuf))
			continue
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("list xattrs of %s: %w", abs, err)
		}
		return w.xbuf[:n], nil
	}
}

func (w *walker) get(abs, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(abs, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get xattr %s of %s: %w", name, abs, err)
		}
		return string(buf[:n]), nil
	}
}
