package layer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	umoci "github.com/opencontainers/umoci/oci/layer"
	"golang.org/x/sys/unix"
)

// trickyTar is a layer with every kind of entry the extractor's fast path
// takes, and the ones it must leave to umoci: names through symbolic links
// (relative and absolute), whiteouts and opaque folders, duplicates,
// replaced folders and files, parents that come late or never, set-id
// bits, owners, xattrs, devices, hard links.
func trickyTar(t testing.TB) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	at := func(n int) time.Time { return time.Date(2020, 1, 2, 3, 4, n, 123456789, time.UTC) }
	add := func(h *tar.Header, body string) {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.ModTime.IsZero() {
			h.ModTime = at(len(h.Name))
		}
		h.Format = tar.FormatPAX
		must(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, err := tw.Write([]byte(body))
			must(t, err)
		}
	}
	dir := func(name string, mode int64) { add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}, "") }
	file := func(name, body string) { add(&tar.Header{Typeflag: tar.TypeReg, Name: name}, body) }
	dir("./", 0o755)
	dir("etc/", 0o755)
	file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/shadow", Mode: 0o640, Gid: 42}, "root:*::::::\n")
	file("usr/bin/env", "#!") // no usr/ nor usr/bin/ entry
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/su", Mode: 0o4755}, "su")
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "usr/bin/su2", Linkname: "usr/bin/su"}, "")
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "/usr/bin/su3", Linkname: "/usr/bin/su"}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/ping", Mode: 0o755,
		Xattrs: map[string]string{"user.test": "v", "trusted.foo": "bar"}}, "ping") //nolint:staticcheck // SA1019: what the reader fills
	dir("usr/lib/", 0o755)
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "usr/lib"}, "")
	file("lib/x.so", "through a relative link")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "abs", Linkname: "/etc"}, "")
	file("abs/hosts", "through an absolute link")
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "hl-through-link", Linkname: "lib/x.so"}, "")
	dir("dev/", 0o755)
	add(&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}, "")
	add(&tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Gid: 6, Devmajor: 7}, "")
	add(&tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}, "")
	dir("var/", 0o755)
	file("var/.wh.gone", "")
	dir("opt/", 0o755)
	file("opt/old", "before the opaque marker")
	file("opt/.wh.old2", "")
	file("opt/.wh..wh..opq", "")
	file("opt/keep", "after the opaque marker")
	file("dup", "first")
	file("dup", "second")
	dir("dd/", 0o755)
	file("dd/in", "x")
	file("dd", "a file where a folder was")
	file("ff", "a file")
	dir("ff/", 0o711)
	file("late/a", "before its folder")
	dir("late/", 0o700)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "owned", Uid: 1000, Gid: 1001}, "mine")
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "sg/", Mode: 0o2775, Gid: 50}, "")
	file("sg/f", "takes sg's group unless chowned")
	dir("sg/sub/", 0o755)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "xd/", Mode: 0o755, Xattrs: map[string]string{"user.d": "1"}}, "") //nolint:staticcheck // SA1019
	dir("tmp/", 0o1777)
	file("empty", "")
	file("big", strings.Repeat("0123456789abcdef", 200_000))
	dir("etc/", 0o750) // again, other mode
	// More folders than the extractor keeps open, linked across.
	for i := range 2 * maxOpenDirs {
		dir(fmt.Sprintf("many/d%03d/", i), 0o755)
		file(fmt.Sprintf("many/d%03d/f", i), "x")
		add(&tar.Header{Typeflag: tar.TypeLink, Name: fmt.Sprintf("many/d%03d/l", i), Linkname: fmt.Sprintf("many/d%03d/f", i/2)}, "")
	}
	must(t, tw.Close())
	return b.Bytes()
}

// umociExtract is what extractTar did before the fast path: umoci alone.
func umociExtract(dest string, r io.Reader) error {
	te := umoci.NewTarExtractor(&umoci.UnpackOptions{OnDiskFormat: umoci.OverlayfsRootfs{}})
	return readEntries(r, func(h *tar.Header, r io.Reader) error { return te.UnpackEntry(dest, h, r) })
}

// treeState describes every inode under root: type, mode, owner, size,
// content, link target, device, mtime, xattrs, and which names share it.
// An mtime from after since is shown as "now": umoci leaves the time of
// creation on whiteouts and on folders the archive has no entry for, and
// on dest itself when it made a folder there implicitly.
func treeState(t testing.TB, root string, since time.Time) map[string]string {
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		mtime := fmt.Sprintf("%d.%09d", st.Mtim.Sec, st.Mtim.Nsec)
		if !time.Unix(st.Mtim.Unix()).Before(since) {
			mtime = "now"
		}
		s := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d rdev=%d mtime=%s",
			st.Mode, st.Uid, st.Gid, st.Size, st.Rdev, mtime)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			s += " sha=" + hex.EncodeToString(sum[:8])
			if first, ok := inodes[st.Ino]; ok {
				s += " link-of=" + first
			} else {
				inodes[st.Ino] = rel
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			s += " -> " + target
		}
		sz, _ := unix.Llistxattr(p, nil)
		if sz > 0 {
			buf := make([]byte, sz)
			sz, _ = unix.Llistxattr(p, buf)
			names := strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00")
			slices.Sort(names)
			for _, n := range names {
				v := make([]byte, 256)
				k, _ := unix.Lgetxattr(p, n, v)
				s += fmt.Sprintf(" %s=%q", n, v[:max(k, 0)])
			}
		}
		out[rel] = s
		return nil
	})
	must(t, err)
	return out
}

// TestExtractMatchesUmoci unpacks layers through the extractor and
// through umoci alone, and wants the same trees, inode for inode.
func TestExtractMatchesUmoci(t *testing.T) {
	needRoot(t)
	layers := map[string][]byte{"tricky": trickyTar(t)}
	if b := debianTar(t); b != nil {
		layers["debian"] = b
	}
	for name, b := range layers {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			want, got := t.TempDir(), t.TempDir()
			must(t, umociExtract(want, bytes.NewReader(b)))
			x, err := newExtractor(got, &umoci.UnpackOptions{OnDiskFormat: umoci.OverlayfsRootfs{}})
			must(t, err)
			must(t, readEntries(bytes.NewReader(b), x.entry))
			must(t, x.finish())
			x.close()
			ws, gs := treeState(t, want, start), treeState(t, got, start)
			if name == "tricky" {
				// umoci's own folder creation leaves dest at "now";
				// the extractor gives it the time of the "./" entry.
				if !strings.Contains(gs["."], "mtime=1577934242.123456789") {
					t.Errorf("dest has %s, not the time of its entry", gs["."])
				}
				ws["."], gs["."] = "", ""
			}
			for _, p := range slices.Sorted(func(yield func(string) bool) {
				for k := range ws {
					if !yield(k) {
						return
					}
				}
			}) {
				if ws[p] != gs[p] {
					t.Errorf("%s:\n umoci     %s\n extractor %s", p, ws[p], gs[p])
				}
			}
			for p := range gs {
				if _, ok := ws[p]; !ok {
					t.Errorf("%s: only from the extractor: %s", p, gs[p])
				}
			}
			if len(ws) < 10 {
				t.Fatalf("only %d entries", len(ws))
			}
		})
	}
}

// debianTar is the uncompressed Debian base of the unpack table, when this
// machine has it (STRATA_BENCH_BASE or the default path); nil otherwise.
func debianTar(t testing.TB) []byte {
	base := os.Getenv("STRATA_BENCH_BASE")
	if base == "" {
		base = "/var/cache/strata-examples/bookworm-minbase-20261205.tar.zst"
	}
	if testing.Short() {
		return nil
	}
	f, err := os.Open(base)
	if err != nil {
		return nil
	}
	defer f.Close()
	r, err := openTar(t.Context(), base, "")
	must(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	must(t, err)
	return b
}
