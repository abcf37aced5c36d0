package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	umoci "github.com/opencontainers/umoci/oci/layer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
)

// extractor applies a layer's tar entries to dest as umoci's TarExtractor
// does, with the same result, but at a handful of syscalls per entry where
// umoci spends some thirty (it resolves every name from the root, saves
// and restores the parent folder's metadata, clears xattrs of files it
// just created): on a Debian base that is most of the unpack's time.
//
// The fast path covers the entries of an ordinary layer: a folder, file,
// link or device whose parent folder exists and is reached without
// following a symbolic link, whose name is free, and whose xattrs need no
// translation. It creates each one relative to an open descriptor of its
// parent (openat with O_NOFOLLOW, so no name is resolved through a link),
// exclusively (O_EXCL, mkdirat, symlinkat, linkat, mknodat), and sets its
// owner, mode, xattrs and times on the new inode. Anything else (a
// whiteout, the root entry, a name that exists, a missing parent, a parent
// reached through a symbolic link, overlay or forbidden xattrs) goes to
// umoci's extractor, which resolves it inside dest; it may remove or
// replace folders, so every cached folder descriptor is dropped after it.
//
// Creating an entry changes its folder's mtime: umoci restores the folder
// after every entry, this restores each folder's times once, at the end.
type extractor struct {
	root   string
	rootFd int
	slow   *umoci.TarExtractor

	dirs map[string]dirRef // open parent folders, by cleaned name ("" is root)

	// times holds the times the archive gives each folder (and, under
	// "", those dest had), set at the end; a name that stops being a
	// folder leaves it.
	times map[string][2]unix.Timespec

	// allSlow sends every entry to umoci once a folder carried a default
	// ACL: a file created under it inherits ACL xattrs that umoci clears.
	allSlow  bool
	inUserNS bool
	euid     int
	egid     int
	buf      []byte
}

type dirRef struct {
	fd     int
	setgid bool // new entries take the folder's group, not ours
}

// maxOpenDirs bounds the cached folder descriptors (give or take the
// folders of one entry: they are dropped between entries, so that none an
// entry holds is closed under it); entries come in tree order, so dropping
// them all once in a while costs a reopen per folder.
const maxOpenDirs = 256

func newExtractor(root string, opts *umoci.UnpackOptions) (*extractor, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", root, err)
	}
	x := &extractor{
		root:     root,
		rootFd:   fd,
		slow:     umoci.NewTarExtractor(opts),
		dirs:     map[string]dirRef{"": {fd: fd, setgid: st.Mode&unix.S_ISGID != 0}},
		times:    map[string][2]unix.Timespec{"": {st.Atim, st.Mtim}},
		inUserNS: inUserNS(),
		euid:     os.Geteuid(),
		egid:     os.Getegid(),
		buf:      make([]byte, 1<<20),
	}
	// A default ACL dest inherited from the folder it was made in would
	// be inherited by every file made on the fast path, too.
	if _, err := unix.Lgetxattr(root, "system.posix_acl_default", nil); err == nil {
		x.allSlow = true
	}
	return x, nil
}

// inUserNS says whether this process runs in a user namespace other than
// the initial one, where umoci fakes devices and forgives refused xattrs:
// only the initial one maps all 2^32 ids from 0 to 0.
func inUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// close releases the folder descriptors.
func (x *extractor) close() {
	x.dropDirs()
	unix.Close(x.rootFd)
}

func (x *extractor) dropDirs() {
	for name, d := range x.dirs {
		if name != "" {
			unix.Close(d.fd)
			delete(x.dirs, name)
		}
	}
}

// dir returns the folder name (cleaned, relative to root) opened without
// following any symbolic link on the way.
func (x *extractor) dir(name string) (dirRef, error) {
	if d, ok := x.dirs[name]; ok {
		return d, nil
	}
	parent, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		parent, base = name[:i], name[i+1:]
	}
	p, err := x.dir(parent)
	if err != nil {
		return dirRef{}, err
	}
	fd, err := openat(p.fd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return dirRef{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return dirRef{}, err
	}
	d := dirRef{fd: fd, setgid: st.Mode&unix.S_ISGID != 0}
	x.dirs[name] = d
	return d, nil
}

// inRootfs is the cleaned name of an entry or hard-link target relative to
// the rootfs: an absolute name is the same name inside it ("/etc" is
// "etc"), and must share the folder caches' and times' keys.
func inRootfs(name string) string {
	if n := strings.TrimPrefix(umoci.CleanPath(name), "/"); n != "" {
		return n
	}
	return "."
}

// errSlow sends an entry to umoci's extractor.
var errSlow = errors.New("not on the fast path")

// entry applies one checked tar entry, whose content r holds.
func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	if len(x.dirs) >= maxOpenDirs {
		x.dropDirs()
	}
	name := inRootfs(h.Name)
	if h.Typeflag != tar.TypeDir {
		// No longer a folder: a whiteout makes its target a device.
		dir, base := path.Split(name)
		delete(x.times, name)
		delete(x.times, path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
	}
	err := errSlow
	if !x.allSlow && x.fastable(name, h) {
		err = x.fast(name, h, r)
	}
	if errors.Is(err, errSlow) {
		x.dropDirs()
		err = x.slow.UnpackEntry(x.root, h, r)
	}
	if err != nil {
		return err
	}
	if h.Typeflag == tar.TypeDir {
		if name == "." {
			name = ""
		}
		x.times[name] = entryTimes(h)
	}
	for k := range h.Xattrs { //nolint:staticcheck // SA1019: umoci reads Xattrs too
		if k == "system.posix_acl_default" {
			x.allSlow = true
		}
	}
	return nil
}

// fastable says whether the entry may take the fast path before anything
// is tried: what umoci translates, or applies as something else, may not.
func (x *extractor) fastable(name string, h *tar.Header) bool {
	if name == "." || name == "" || strings.HasPrefix(path.Base(name), whiteoutPrefix) {
		return false
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo: //nolint:staticcheck // SA1019: umoci takes TypeRegA as a file
	case tar.TypeChar, tar.TypeBlock:
		if x.inUserNS {
			return false // umoci fakes devices there
		}
	default:
		return false
	}
	for k := range h.Xattrs { //nolint:staticcheck // SA1019: umoci reads Xattrs too
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA { //nolint:staticcheck // SA1019
			return false // set through a path: rare enough to leave
		}
		if k == "security.selinux" || k == "system.nfs4_acl" || k == "user.rootlesscontainers" ||
			strings.HasPrefix(k, overlayfs.Namespace(false)) || strings.HasPrefix(k, overlayfs.Namespace(true)) {
			return false
		}
	}
	return true
}

// fast creates the entry relative to its parent's descriptor; errSlow
// (with nothing changed) when umoci must do it.
func (x *extractor) fast(name string, h *tar.Header, r io.Reader) error {
	dirName, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dirName, base = name[:i], name[i+1:]
	}
	parent, err := x.dir(dirName)
	if err != nil {
		return errSlow // missing, not a folder, or a link: umoci resolves it
	}
	pfd := parent.fd
	mode := uint32(h.Mode) & 0o7777
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // SA1019
		fd, err := openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return createErr(err, name)
		}
		err = x.file(fd, name, h, r, parent, mode)
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", name, cerr)
		}
		return err
	case tar.TypeDir:
		if err := retry(func() error { return unix.Mkdirat(pfd, base, 0o700) }); err != nil {
			return createErr(err, name)
		}
	case tar.TypeSymlink:
		if err := retry(func() error { return unix.Symlinkat(h.Linkname, pfd, base) }); err != nil {
			return createErr(err, name)
		}
	case tar.TypeLink:
		target := inRootfs(h.Linkname)
		tdir, tbase := "", target
		if i := strings.LastIndexByte(target, '/'); i >= 0 {
			tdir, tbase = target[:i], target[i+1:]
		}
		td, err := x.dir(tdir)
		if err != nil || target == "." {
			return errSlow
		}
		if err := retry(func() error { return unix.Linkat(td.fd, tbase, pfd, base, 0) }); err != nil {
			return createErr(err, name)
		}
		return nil // a hard link has its target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		if err := retry(func() error { return unix.Mknodat(pfd, base, kind|0o600, int(dev)) }); err != nil {
			return createErr(err, name)
		}
	}
	// The entry is new and ours: set what the archive says on it.
	if x.needChown(h, parent) {
		if err := retry(func() error { return unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	if h.Typeflag != tar.TypeSymlink {
		// After the chown, which clears set-id bits.
		if err := retry(func() error { return unix.Fchmodat(pfd, base, mode, 0) }); err != nil {
			return fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	if h.Typeflag == tar.TypeDir {
		return nil // its times are set at the end, once it is filled
	}
	ts := entryTimes(h)
	if err := retry(func() error { return unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return fmt.Errorf("set times of %s: %w", name, err)
	}
	return nil
}

// file writes a regular file's content and metadata through its fd.
func (x *extractor) file(fd int, name string, h *tar.Header, r io.Reader, parent dirRef, mode uint32) error {
	var n int64
	for {
		k, rerr := r.Read(x.buf)
		if k > 0 {
			if err := writeAll(fd, x.buf[:k]); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read content of %s: %w", name, rerr)
		}
	}
	if n != h.Size {
		return fmt.Errorf("unpack %s: %w", name, io.ErrShortWrite)
	}
	if x.needChown(h, parent) {
		if err := retry(func() error { return unix.Fchown(fd, h.Uid, h.Gid) }); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	if err := retry(func() error { return unix.Fchmod(fd, mode) }); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	// After the chown, which clears security.capability.
	for k, v := range h.Xattrs { //nolint:staticcheck // SA1019: umoci reads Xattrs too
		err := retry(func() error { return unix.Fsetxattr(fd, k, []byte(v), 0) })
		// As umoci: a file system without xattrs, or (in a user
		// namespace) one that refuses some, is no failure.
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !(x.inUserNS && errors.Is(err, unix.EPERM)) {
			return fmt.Errorf("set xattr %s of %s: %w", k, name, err)
		}
	}
	ts := entryTimes(h)
	if err := retry(func() error { return unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH) }); err != nil {
		return fmt.Errorf("set times of %s: %w", name, err)
	}
	return nil
}

// needChown says whether a new entry would not already have the owner h
// gives it: it has our ids, or its folder's group under a set-group-id one.
func (x *extractor) needChown(h *tar.Header, parent dirRef) bool {
	return h.Uid != x.euid || h.Gid != x.egid || parent.setgid
}

// finish sets every folder's times, now that nothing more is created in
// them.
func (x *extractor) finish() error {
	for name, ts := range x.times {
		if len(x.dirs) >= maxOpenDirs {
			x.dropDirs()
		}
		if name == "" {
			if err := retry(func() error { return unix.UtimesNanoAt(x.rootFd, "", ts[:], unix.AT_EMPTY_PATH) }); err != nil {
				return fmt.Errorf("set times of %s: %w", x.root, err)
			}
			continue
		}
		dirName, base := "", name
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			dirName, base = name[:i], name[i+1:]
		}
		d, err := x.dir(dirName)
		if err != nil {
			continue // gone, under a whiteout or a replaced folder
		}
		err = retry(func() error { return unix.UtimesNanoAt(d.fd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("set times of %s: %w", name, err)
		}
	}
	return nil
}

// entryTimes are the atime and mtime umoci gives an entry: a missing
// mtime is now, a missing atime the mtime.
func entryTimes(h *tar.Header) [2]unix.Timespec {
	mtime := h.ModTime
	if mtime.IsZero() {
		mtime = time.Now()
	}
	atime := h.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	return [2]unix.Timespec{timespec(atime), timespec(mtime)}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// createErr is errSlow for a name that cannot be created as is (it exists,
// or its parent vanished), which umoci clobbers or makes.
func createErr(err error, name string) error {
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return errSlow
	}
	return fmt.Errorf("create %s: %w", name, err)
}

func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

func retry(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// writeAll writes all of b to fd, through interruptions (the unpack's
// files and the squashfs pipe alike).
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
