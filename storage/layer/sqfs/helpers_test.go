package sqfs_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/storage/layer/sqfs"
)

// entry is one input entry and, for regular files, its content.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// sortEntries puts entries in the walker's order: depth-first, each
// directory's members by bytewise name. Comparing the component lists does
// exactly that.
func sortEntries(es []entry) {
	key := func(e entry) []string { return strings.Split(strings.TrimSuffix(e.hdr.Name, "/"), "/") }
	slices.SortStableFunc(es, func(a, b entry) int { return slices.Compare(key(a), key(b)) })
}

// build writes entries to a new image in t's temp dir.
func build(t testing.TB, es []entry, opts sqfs.Options) (string, sqfs.Result) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img.sqfs")
	res, err := buildTo(img, es, opts)
	if err != nil {
		t.Fatal(err)
	}
	return img, res
}

func buildTo(img string, es []entry, opts sqfs.Options) (sqfs.Result, error) {
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return sqfs.Result{}, err
	}
	defer f.Close()
	w, err := sqfs.NewWriter(f, opts)
	if err != nil {
		return sqfs.Result{}, err
	}
	for _, e := range es {
		var r *bytes.Reader
		if e.data != nil {
			r = bytes.NewReader(e.data)
		}
		if r == nil {
			err = w.Add(e.hdr, nil)
		} else {
			err = w.Add(e.hdr, r)
		}
		if err != nil {
			w.Close()
			return sqfs.Result{}, err
		}
	}
	return w.Close()
}

// want is what a reader of the image should see at one path.
type want struct {
	name   string
	typ    byte // tar type, hardlinks resolved
	mode   int64
	uid    int
	gid    int
	mtime  int64
	data   []byte
	target string
	major  int64
	minor  int64
	xattrs map[string]string
	group  string // the first name of the inode, for hardlinks
	nlink  int
}

// model resolves hardlinks and adds the root.
func model(es []entry, mtime time.Time) []*want {
	root := &want{name: "", typ: tar.TypeDir, mode: 0o755, mtime: mtime.Unix(), nlink: 2}
	byName := map[string]*want{"": root}
	out := []*want{root}
	for _, e := range es {
		h := e.hdr
		name := strings.TrimSuffix(h.Name, "/")
		var w want
		if h.Typeflag == tar.TypeLink {
			w = *byName[h.Linkname]
			byName[w.group].nlink++
		} else {
			w = want{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix(),
				data: e.data, target: h.Linkname, major: h.Devmajor, minor: h.Devminor, group: name, nlink: 1}
			for k, v := range h.PAXRecords {
				if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
					if w.xattrs == nil {
						w.xattrs = map[string]string{}
					}
					w.xattrs[n] = v
				}
			}
			if w.typ == tar.TypeDir {
				w.nlink = 2
				byName[parentOf(name)].nlink++
			}
		}
		w.name = name
		byName[name] = &w
		out = append(out, &w)
	}
	// Hardlinks share the nlink of their first name.
	for _, w := range out {
		if w.typ != tar.TypeDir {
			w.nlink = byName[w.group].nlink
		}
	}
	return out
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

// run runs a command and fails the test with its output if it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// permString is a mode as ls -l (and unsquashfs -lln) shows it.
func permString(typ byte, mode int64) string {
	b := []byte("?rwxrwxrwx")
	switch typ {
	case tar.TypeDir:
		b[0] = 'd'
	case tar.TypeSymlink:
		b[0] = 'l'
	case tar.TypeChar:
		b[0] = 'c'
	case tar.TypeBlock:
		b[0] = 'b'
	case tar.TypeFifo:
		b[0] = 'p'
	default:
		b[0] = '-'
	}
	for i := range 9 {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit int64, pos int, lower, upper byte) {
		if mode&bit != 0 {
			if b[pos] == '-' {
				b[pos] = upper
			} else {
				b[pos] = lower
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// checkListing compares unsquashfs -lln's listing with the model.
func checkListing(t testing.TB, img string, ws []*want) {
	t.Helper()
	out := run(t, "unsquashfs", "-lln", "-UTC", img)
	got := map[string]string{}
	var order []string
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if !strings.HasPrefix(line, "d") && !strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "l") &&
			!strings.HasPrefix(line, "c") && !strings.HasPrefix(line, "b") && !strings.HasPrefix(line, "p") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		perm, owner := f[0], f[1]
		rest := f[2:]
		var size string
		if (perm[0] == 'c' || perm[0] == 'b') && strings.HasSuffix(rest[0], ",") {
			size, rest = rest[0]+rest[1], rest[2:]
		} else {
			size, rest = rest[0], rest[1:]
		}
		stamp := rest[0] + " " + rest[1]
		name := strings.Join(rest[2:], " ")
		target := ""
		if perm[0] == 'l' {
			name, target, _ = strings.Cut(name, " -> ")
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, "squashfs-root"), "/")
		if perm[0] == 'd' {
			size = ""
		}
		got[name] = fmt.Sprintf("%s %s %s %s %s", perm, owner, size, stamp, target)
		order = append(order, name)
	}
	var wantOrder []string
	for _, w := range ws {
		size := ""
		switch w.typ {
		case tar.TypeReg:
			size = strconv.Itoa(len(w.data))
		case tar.TypeSymlink:
			size = strconv.Itoa(len(w.target))
		case tar.TypeChar, tar.TypeBlock:
			size = fmt.Sprintf("%d,%d", w.major, w.minor)
			if w.major > 255 || w.minor > 255 {
				// unsquashfs 4.5 prints these wrongly (-1,255 for
				// 4095:1048575), for mksquashfs's images too.
				_, rest, _ := strings.Cut(got[w.name], "/")
				f := strings.Fields(rest)
				if len(f) > 1 {
					size = f[1]
				}
			}
		case tar.TypeFifo:
			size = "0"
		}
		stamp := time.Unix(w.mtime, 0).UTC().Format("2006-01-02 15:04")
		exp := fmt.Sprintf("%s %d/%d %s %s %s", permString(w.typ, w.mode), w.uid, w.gid, size, stamp, w.target)
		if got[w.name] != exp {
			t.Errorf("unsquashfs -lln %q:\n got %q\nwant %q", w.name, got[w.name], exp)
		}
		wantOrder = append(wantOrder, w.name)
	}
	if len(order) != len(ws) {
		t.Errorf("unsquashfs -lln lists %d entries, want %d:\n%s", len(order), len(ws), out)
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("unsquashfs -lln order differs from the input's")
	}
}

// treeCheck says what a reader is expected to reproduce.
type treeCheck struct {
	nlink       bool // link counts (mounts; an extraction has its own)
	symlinkTime bool // symlinks' mtimes
	xattrs      bool
	noInodes    bool // hardlinks need not share st_ino (FUSE without use_ino)
	// fixXattrs adjusts the expected xattrs to a reader's quirks.
	fixXattrs func(map[string]string) map[string]string
}

// checkTree compares the tree at root with the model.
func checkTree(t testing.TB, root string, ws []*want, c treeCheck) {
	t.Helper()
	inodes := map[string]uint64{}
	seen := map[string]bool{}
	for _, w := range ws {
		p := filepath.Join(root, w.name)
		seen[p] = true
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%q: %v", w.name, err)
			continue
		}
		errorf := func(format string, args ...any) { t.Errorf("%q: "+format, append([]any{w.name}, args...)...) }
		typ := map[byte]uint32{tar.TypeReg: unix.S_IFREG, tar.TypeDir: unix.S_IFDIR, tar.TypeSymlink: unix.S_IFLNK,
			tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[w.typ]
		if st.Mode&unix.S_IFMT != typ {
			errorf("type %#o, want %#o", st.Mode&unix.S_IFMT, typ)
			continue
		}
		if w.typ != tar.TypeSymlink && int64(st.Mode&0o7777) != w.mode {
			errorf("mode %#o, want %#o", st.Mode&0o7777, w.mode)
		}
		if int(st.Uid) != w.uid || int(st.Gid) != w.gid {
			errorf("owner %d/%d, want %d/%d", st.Uid, st.Gid, w.uid, w.gid)
		}
		if (w.typ != tar.TypeSymlink || c.symlinkTime) && st.Mtim.Sec != w.mtime {
			errorf("mtime %d, want %d", st.Mtim.Sec, w.mtime)
		}
		if c.nlink && int(st.Nlink) != w.nlink {
			errorf("nlink %d, want %d", st.Nlink, w.nlink)
		}
		if w.typ != tar.TypeDir && !c.noInodes {
			if ino, ok := inodes[w.group]; ok && ino != st.Ino {
				errorf("inode %d, want %d shared with %q", st.Ino, ino, w.group)
			}
			inodes[w.group] = st.Ino
		}
		switch w.typ {
		case tar.TypeReg:
			b, err := os.ReadFile(p)
			if err != nil {
				errorf("%v", err)
			} else if !bytes.Equal(b, w.data) {
				errorf("content of %d bytes differs from the %d written", len(b), len(w.data))
			}
		case tar.TypeSymlink:
			if l, err := os.Readlink(p); err != nil || l != w.target {
				errorf("target %q (%v), want %q", l, err, w.target)
			}
		case tar.TypeChar, tar.TypeBlock:
			if int64(unix.Major(st.Rdev)) != w.major || int64(unix.Minor(st.Rdev)) != w.minor {
				errorf("device %d:%d, want %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev), w.major, w.minor)
			}
		}
		if c.xattrs {
			exp := w.xattrs
			if c.fixXattrs != nil {
				exp = c.fixXattrs(exp)
			}
			if got := xattrs(t, p, c.fixXattrs != nil); !equalMaps(got, exp) {
				errorf("xattrs %q, want %q", got, exp)
			}
		}
	}
	var extra []string
	filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && !seen[p] {
			extra = append(extra, p)
		}
		return nil
	})
	if len(extra) > 0 {
		t.Errorf("unexpected entries: %q", extra)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// xattrs reads all xattrs of p, without following symlinks.
// With lenient, names that cannot be read are left out.
func xattrs(t testing.TB, p string, lenient bool) map[string]string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		t.Errorf("listxattr %s: %v", p, err)
		return nil
	}
	var m map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, val)
		if err != nil && lenient {
			continue
		}
		if err != nil {
			t.Errorf("getxattr %s %s: %v", p, name, err)
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[name] = string(val[:k])
	}
	return m
}

// extract unpacks img with unsquashfs into a new dir.
func extract(t testing.TB, img string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "x")
	run(t, "unsquashfs", "-no-progress", "-quiet", "-strict-errors", "-d", dir, img)
	return dir
}

// content is n deterministic bytes that compress somewhat: runs of text
// and of noise.
func content(seed uint64, n int) []byte {
	r := mrand.New(mrand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i < n; {
		k := min(n-i, 1+r.IntN(2000))
		if r.IntN(2) == 0 {
			for j := range k {
				b[i+j] = byte(r.Uint32())
			}
		} else {
			for j := range k {
				b[i+j] = "the quick brown fox "[j%20]
			}
		}
		i += k
	}
	return b
}

var isRoot = os.Geteuid() == 0

// mountKernel loop-mounts img read-only and returns the mount point.
func mountKernel(t testing.TB, img string) string {
	t.Helper()
	if !isRoot {
		t.Skip("mounting needs root")
	}
	mnt := t.TempDir()
	run(t, "mount", "-o", "loop,ro", "-t", "squashfs", img, mnt)
	t.Cleanup(func() { exec.Command("umount", "-d", mnt).Run() })
	return mnt
}
