package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds whiteouts (mknod c 0 0), trusted.* xattrs and chowns")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var future = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// makeUpper builds by hand what an overlay upper dir looks like after a
// build step.
func makeUpper(t testing.TB) string {
	t.Helper()
	up := t.TempDir()
	p := func(s string) string { return filepath.Join(up, s) }
	must(t, os.MkdirAll(p("etc/app"), 0o755))
	must(t, os.WriteFile(p("etc/app/conf"), []byte("key=value\n"), 0o644))
	must(t, os.WriteFile(p("etc/big"), bytes.Repeat([]byte("0123456789abcdef"), 200_000), 0o600)) // > readChunk
	must(t, os.Symlink("app/conf", p("etc/link")))
	must(t, os.Link(p("etc/app/conf"), p("etc/hard")))
	must(t, unix.Mkfifo(p("etc/fifo"), 0o600))
	must(t, os.WriteFile(p("suid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chmod(p("suid"), 0o4755|os.ModeSetuid))
	must(t, unix.Chmod(p("suid"), 0o4755))
	must(t, os.WriteFile(p("owned"), []byte("x"), 0o644))
	must(t, os.Lchown(p("owned"), 1234, 1234))
	must(t, unix.Lsetxattr(p("owned"), "user.foo", []byte("bar"), 0))
	must(t, unix.Mknod(p("etc/removed"), unix.S_IFCHR|0o600, 0))
	must(t, os.MkdirAll(p("var/opq/sub"), 0o755))
	must(t, os.WriteFile(p("var/opq/sub/new"), []byte("new"), 0o644))
	must(t, unix.Lsetxattr(p("var/opq"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Lsetxattr(p("var"), "trusted.overlay.origin", []byte("junk"), 0))
	must(t, unix.Mknod(p("var/opq/gone"), unix.S_IFCHR|0o600, 0)) // hidden anyway
	must(t, os.Chmod(p("var"), 0o1777))
	must(t, unix.Chmod(p("var"), 0o1777))
	must(t, os.Chtimes(p("etc/app/conf"), future, future))
	return up
}

func readTar(t *testing.T, blob string, typ layertype.Type) []*tar.Header {
	t.Helper()
	f, err := os.Open(blob)
	must(t, err)
	defer f.Close()
	var r io.Reader = f
	switch typ {
	case layertype.TarGzip:
		zr, err := pgzip.NewReader(f)
		must(t, err)
		r = zr
	case layertype.TarZstd:
		zr, err := zstd.NewReader(f)
		must(t, err)
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs
		}
		must(t, err)
		hdrs = append(hdrs, h)
	}
}

func TestWriteTar(t *testing.T) {
	needRoot(t)
	up := makeUpper(t)
	epoch := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, typ := range []layertype.Type{layertype.TarGzip, layertype.TarZstd, layertype.TarUncompressed} {
		t.Run(string(typ), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "blob")
			res, err := Write(context.Background(), up, typ, out, WriteOptions{SourceDateEpoch: epoch})
			must(t, err)
			if res.Empty || res.MediaType != MediaType(typ) || res.Size == 0 {
				t.Fatalf("bad result %+v", res)
			}
			d, size, err := digestFile(out)
			must(t, err)
			if d != res.Digest || size != res.Size {
				t.Fatalf("digest %s/%d, file has %s/%d", res.Digest, res.Size, d, size)
			}
			hdrs := readTar(t, out, typ)
			var names []string
			byName := map[string]*tar.Header{}
			for _, h := range hdrs {
				names = append(names, h.Name)
				byName[h.Name] = h
				if h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: user/group names leak: %q %q", h.Name, h.Uname, h.Gname)
				}
				if h.ModTime.After(epoch) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
					t.Errorf("%s: times not clamped: %v %v %v", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
				}
				for k := range h.PAXRecords {
					if bytes.Contains([]byte(k), []byte(".overlay.")) {
						t.Errorf("%s: overlay xattr %s in tar", h.Name, k)
					}
				}
			}
			want := []string{
				// Sorted by the names in the upper dir: the whiteout of
				// "removed" sorts as "removed".
				"etc/", "etc/app/", "etc/app/conf", "etc/big", "etc/fifo",
				"etc/hard", "etc/link", "etc/.wh.removed", "owned", "suid",
				"var/", "var/opq/", "var/opq/.wh..wh..opq", "var/opq/sub/", "var/opq/sub/new",
			}
			if !slices.Equal(names, want) {
				t.Fatalf("entries\n got %q\nwant %q", names, want)
			}
			if h := byName["etc/app/conf"]; !h.ModTime.Equal(epoch) || h.Typeflag != tar.TypeReg {
				t.Errorf("conf: %v %c", h.ModTime, h.Typeflag)
			}
			if h := byName["etc/hard"]; h.Typeflag != tar.TypeLink || h.Linkname != "etc/app/conf" {
				t.Errorf("hardlink: %c %q", h.Typeflag, h.Linkname)
			}
			if h := byName["etc/link"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "app/conf" {
				t.Errorf("symlink: %c %q", h.Typeflag, h.Linkname)
			}
			if h := byName["etc/fifo"]; h.Typeflag != tar.TypeFifo {
				t.Errorf("fifo: %c", h.Typeflag)
			}
			if h := byName["etc/big"]; h.Size != 3_200_000 || h.Mode != 0o600 {
				t.Errorf("big: %d %o", h.Size, h.Mode)
			}
			if h := byName["suid"]; h.Mode != 0o4755 {
				t.Errorf("suid mode %o", h.Mode)
			}
			if h := byName["var/"]; h.Mode != 0o1777 {
				t.Errorf("sticky mode %o", h.Mode)
			}
			if h := byName["owned"]; h.Uid != 1234 || h.Gid != 1234 || h.PAXRecords["SCHILY.xattr.user.foo"] != "bar" {
				t.Errorf("owned: %d:%d %v", h.Uid, h.Gid, h.PAXRecords)
			}
			for _, n := range []string{"etc/.wh.removed", "var/opq/.wh..wh..opq"} {
				if h := byName[n]; h.Typeflag != tar.TypeReg || h.Size != 0 {
					t.Errorf("%s: %c size %d", n, h.Typeflag, h.Size)
				}
			}

			out2 := filepath.Join(t.TempDir(), "blob")
			res2, err := Write(context.Background(), up, typ, out2, WriteOptions{SourceDateEpoch: epoch})
			must(t, err)
			if res2 != res {
				t.Fatalf("not reproducible: %+v vs %+v", res, res2)
			}
			testUnpackBack(t, out, res)
		})
	}
}

// testUnpackBack unpacks a written layer and checks the overlay form.
func testUnpackBack(t *testing.T, blob string, res Result) {
	dest := t.TempDir()
	must(t, Unpack(context.Background(), blob, res.MediaType, dest, UnpackOptions{Digest: res.Digest}))
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dest, "etc/removed"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout is mode %o rdev %d", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dest, "var/opq"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	must(t, unix.Lstat(filepath.Join(dest, "owned"), &st))
	if st.Uid != 1234 || st.Mode&0o7777 != 0o644 {
		t.Errorf("owned: uid %d mode %o", st.Uid, st.Mode)
	}
	must(t, unix.Lstat(filepath.Join(dest, "suid"), &st))
	if st.Mode&0o7777 != 0o4755 {
		t.Errorf("suid mode %o", st.Mode&0o7777)
	}
	var a, b unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dest, "etc/hard"), &a))
	must(t, unix.Lstat(filepath.Join(dest, "etc/app/conf"), &b))
	if a.Ino != b.Ino {
		t.Errorf("hardlink not restored")
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "etc/big")); len(got) != 3_200_000 {
		t.Errorf("big file has %d bytes", len(got))
	}
	if n, err := unix.Lgetxattr(filepath.Join(dest, "var"), "trusted.overlay.origin", buf); err == nil {
		t.Errorf("overlay origin xattr leaked: %q", buf[:n])
	}
}

func TestUnpackDigestMismatch(t *testing.T) {
	needRoot(t)
	up := makeUpper(t)
	out := filepath.Join(t.TempDir(), "blob")
	_, err := Write(context.Background(), up, layertype.TarZstd, out, WriteOptions{})
	must(t, err)
	bad := "sha256:" + string(bytes.Repeat([]byte("0"), 64))
	err = Unpack(context.Background(), out, "", t.TempDir(), UnpackOptions{Digest: digest.Digest(bad)})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(bad)) {
		t.Fatalf("want mismatch error naming %s, got %v", bad, err)
	}
}

func TestWriteEmpty(t *testing.T) {
	for _, typ := range []layertype.Type{layertype.TarGzip, layertype.TarZstd, layertype.Squashfs} {
		out := filepath.Join(t.TempDir(), "blob")
		res, err := Write(context.Background(), t.TempDir(), typ, out, WriteOptions{})
		must(t, err)
		if !res.Empty {
			t.Fatalf("%s: want Empty, got %+v", typ, res)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: blob written for empty upper", typ)
		}
	}
}

func TestWriteRejectsRedirect(t *testing.T) {
	needRoot(t)
	up := t.TempDir()
	must(t, os.Mkdir(filepath.Join(up, "moved"), 0o755))
	must(t, unix.Lsetxattr(filepath.Join(up, "moved"), "trusted.overlay.redirect", []byte("/old"), 0))
	out := filepath.Join(t.TempDir(), "blob")
	_, err := Write(context.Background(), up, layertype.TarZstd, out, WriteOptions{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("redirect_dir=off")) {
		t.Fatalf("want redirect error, got %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("blob left behind after error")
	}
}

func TestWriteCancel(t *testing.T) {
	up := t.TempDir()
	for i := range 50 {
		must(t, os.WriteFile(filepath.Join(up, string(rune('a'+i%26))+string(rune('a'+i/26))), make([]byte, 1<<20), 0o644))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "blob")
	if _, err := Write(ctx, up, layertype.TarZstd, out, WriteOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := Write(ctx, up, layertype.TarGzip, out, WriteOptions{})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline error, got %v", err)
	}
	if err != nil {
		if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
			t.Fatal("blob left behind after cancel")
		}
	}
}

// The compressed output must not depend on the number of CPUs, or layer
// digests would differ between machines: the compressors' concurrency
// follows GOMAXPROCS.
func TestCompressorsIndependentOfConcurrency(t *testing.T) {
	data := make([]byte, 20<<20)
	for i := range data {
		data[i] = byte(i * i >> 7)
	}
	enc := func(typ layertype.Type, procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var b bytes.Buffer
		w, err := newCompressor(typ, &b, 0)
		must(t, err)
		for p := data; len(p) > 0; p = p[min(len(p), 100_000):] {
			_, err := w.Write(p[:min(len(p), 100_000)])
			must(t, err)
		}
		must(t, w.Close())
		return b.Bytes()
	}
	for _, typ := range []layertype.Type{layertype.TarZstd, layertype.TarGzip} {
		a, b := enc(typ, 1), enc(typ, 7)
		if !bytes.Equal(a, b) {
			t.Errorf("%s output differs with concurrency (%d vs %d bytes)", typ, len(a), len(b))
		}
	}
}

func TestMediaTypeRoundTrip(t *testing.T) {
	for _, want := range []layertype.Type{layertype.TarGzip, layertype.TarZstd, layertype.Squashfs, layertype.TarUncompressed} {
		if back, err := TypeOfMediaType(MediaType(want)); err != nil || back != want {
			t.Errorf("TypeOfMediaType(%q) = %q, %v", MediaType(want), back, err)
		}
	}
}

// TestWriteFS writes the tricky upper dir as a squashfs and an erofs
// layer, each with its dm-verity tree, and unpacks them again.
func TestWriteFS(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		typ         layertype.Type
		writer, bin string
	}{
		{layertype.Squashfs, SquashfsNative, ""},
		{layertype.Squashfs, SquashfsMksquashfs, "mksquashfs"},
		{layertype.Erofs, "", "mkfs.erofs"},
	} {
		t.Run(string(c.typ)+"-"+c.writer, func(t *testing.T) {
			if _, err := exec.LookPath(c.bin); c.bin != "" && err != nil {
				t.Skip("needs " + c.bin)
			}
			testWriteFS(t, c.typ, WriteOptions{SourceDateEpoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), SquashfsWriter: c.writer})
		})
	}
}

func testWriteFS(t *testing.T, typ layertype.Type, opts WriteOptions) {
	up := makeUpper(t)
	epoch := opts.SourceDateEpoch
	out := filepath.Join(t.TempDir(), "blob")
	res, err := Write(context.Background(), up, typ, out, opts)
	must(t, err)
	if res.Digest != res.DiffID || res.MediaType != MediaType(typ) || len(res.RootHash) != 64 {
		t.Fatalf("bad result %+v", res)
	}
	checkVerity(t, out, res.RootHash)
	out2 := filepath.Join(t.TempDir(), "blob")
	res2, err := Write(context.Background(), up, typ, out2, opts)
	must(t, err)
	if res2 != res {
		t.Fatalf("%s not reproducible: %s vs %s", typ, res.Digest, res2.Digest)
	}
	plain := filepath.Join(t.TempDir(), "blob")
	noVerity := opts
	noVerity.NoVerity = true
	res3, err := Write(context.Background(), up, typ, plain, noVerity)
	must(t, err)
	if res3.RootHash != "" || res3.Annotations() != nil || res3.Size%4096 != 0 || res3.Size >= res.Size {
		t.Fatalf("--no-verity gave %+v (with verity: %d bytes)", res3, res.Size)
	}
	// The tree is appended to the very image written without one.
	withTree, _ := os.ReadFile(out)
	without, _ := os.ReadFile(plain)
	if !bytes.Equal(withTree[:len(without)], without) {
		t.Fatal("the image under the verity tree differs from the one written without it")
	}

	dest := t.TempDir()
	must(t, Unpack(context.Background(), out, res.MediaType, dest, UnpackOptions{Digest: res.Digest}))
	var st unix.Stat_t
	for _, wo := range []string{"etc/removed", "var/opq/gone"} {
		if wo == "var/opq/gone" && typ == layertype.Erofs {
			// Through the OCI form, a whiteout inside an opaque dir,
			// which hides nothing more, is left out.
			continue
		}
		must(t, unix.Lstat(filepath.Join(dest, wo), &st))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d", wo, st.Mode, st.Rdev)
		}
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dest, "var/opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dest, "var/opq"), "user.overlay.opaque", buf); err == nil {
		t.Errorf("user.overlay.opaque left for a trusted-xattr overlay")
	}
	if _, err := unix.Lgetxattr(filepath.Join(dest, "var"), "trusted.overlay.origin", buf); err == nil {
		t.Errorf("overlay origin xattr leaked")
	}
	if n, err := unix.Lgetxattr(filepath.Join(dest, "owned"), "user.foo", buf); err != nil || string(buf[:n]) != "bar" {
		t.Errorf("user.foo: %q %v", buf[:n], err)
	}
	must(t, unix.Lstat(filepath.Join(dest, "owned"), &st))
	if st.Uid != 1234 || st.Gid != 1234 {
		t.Errorf("owner %d:%d", st.Uid, st.Gid)
	}
	must(t, unix.Lstat(filepath.Join(dest, "suid"), &st))
	if st.Mode&0o7777 != 0o4755 || st.Mtim.Sec != epoch.Unix() {
		t.Errorf("suid mode %o mtime %d", st.Mode&0o7777, st.Mtim.Sec)
	}
	var a, b unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dest, "etc/hard"), &a))
	must(t, unix.Lstat(filepath.Join(dest, "etc/app/conf"), &b))
	if a.Ino != b.Ino {
		t.Errorf("hardlink not kept")
	}
	for _, f := range []string{"etc/big", "etc/app/conf", "var/opq/sub/new"} {
		x, _ := os.ReadFile(filepath.Join(up, f))
		y, err := os.ReadFile(filepath.Join(dest, f))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs: %v", f, err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dest, "etc/link")); l != "app/conf" {
		t.Errorf("symlink -> %q", l)
	}

	// Rootless consumers get the user.* name.
	dest2 := t.TempDir()
	must(t, Unpack(context.Background(), out, res.MediaType, dest2, UnpackOptions{UserXattr: true}))
	if n, err := unix.Lgetxattr(filepath.Join(dest2, "var/opq"), "user.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("user opaque xattr: %q %v", buf[:n], err)
	}
	if typ != layertype.Erofs {
		return
	}
	// A rootless unpack of an erofs layer, which cannot mount it, goes
	// through fsck.erofs: the opaque marks come back from the image.
	dest3 := t.TempDir()
	must(t, Unpack(context.Background(), out, res.MediaType, dest3, UnpackOptions{UserXattr: true, Rootless: true, Digest: res.Digest}))
	if n, err := unix.Lgetxattr(filepath.Join(dest3, "var/opq"), "user.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("rootless unpack: user opaque xattr: %q %v", buf[:n], err)
	}
	must(t, unix.Lstat(filepath.Join(dest3, "etc/removed"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("rootless unpack: etc/removed: mode %o rdev %d", st.Mode, st.Rdev)
	}
	for _, f := range []string{"etc/big", "etc/app/conf", "var/opq/sub/new"} {
		x, _ := os.ReadFile(filepath.Join(up, f))
		y, err := os.ReadFile(filepath.Join(dest3, f))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("rootless unpack: %s differs: %v", f, err)
		}
	}
}

// A squashfs layer's diff ID is its digest: Unpack checks a claimed one
// as it checks a tar layer's, so no caller need special-case squashfs.
func TestUnpackSquashfsChecksDiffID(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs squashfs-tools")
	}
	blob := filepath.Join(t.TempDir(), "blob")
	res, err := Write(context.Background(), makeUpper(t), layertype.Squashfs, blob, WriteOptions{})
	must(t, err)
	wrong := digest.Digest("sha256:" + string(bytes.Repeat([]byte("0"), 64)))
	for _, opts := range []UnpackOptions{{Digest: res.Digest, DiffID: wrong}, {DiffID: wrong}} {
		if err := Unpack(context.Background(), blob, MediaTypeSquashfsZstd, t.TempDir(), opts); !errors.Is(err, ErrDiffID) {
			t.Errorf("%+v: err = %v, want ErrDiffID", opts, err)
		}
	}
	for _, opts := range []UnpackOptions{{Digest: res.Digest, DiffID: res.Digest}, {DiffID: res.Digest}} {
		if err := Unpack(context.Background(), blob, res.MediaType, t.TempDir(), opts); err != nil {
			t.Errorf("%+v: %v", opts, err)
		}
	}
}
