package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func hostileTar(t testing.TB, tag string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		h.Mode = 0o644
		must(t, tw.WriteHeader(h))
		if h.Size > 0 {
			_, err := tw.Write([]byte(body))
			must(t, err)
		}
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "../escape-" + tag}, "x")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "/tmp/abs-escape-" + tag}, "x")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "etclink", Linkname: "/etc"}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etclink/escape-" + tag}, "x")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../.."}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "up/tmp/up-escape-" + tag}, "x")
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../../../etc/passwd"}, "")
	must(t, tw.Close())
	return b.Bytes()
}

// checkContained fails if anything but dest appeared in box, the temp dir
// holding dest.
func checkContained(t testing.TB, box string) {
	t.Helper()
	ents, err := os.ReadDir(box)
	must(t, err)
	for _, e := range ents {
		if e.Name() != "dest" {
			t.Fatalf("unpack wrote %s outside dest", filepath.Join(box, e.Name()))
		}
	}
}

func TestUnpackHostile(t *testing.T) {
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	blob := filepath.Join(t.TempDir(), "blob")
	must(t, os.WriteFile(blob, hostileTar(t, tag), 0o644))
	box := t.TempDir()
	dest := filepath.Join(box, "dest")
	must(t, os.Mkdir(dest, 0o755))
	_ = Unpack(context.Background(), blob, "application/vnd.oci.image.layer.v1.tar", dest, UnpackOptions{Rootless: os.Geteuid() != 0})
	checkContained(t, box)
	for _, p := range []string{"/etc/escape-" + tag, "/tmp/abs-escape-" + tag, "/tmp/up-escape-" + tag, filepath.Join(filepath.Dir(box), "escape-"+tag)} {
		if _, err := os.Lstat(p); err == nil {
			os.Remove(p)
			t.Errorf("hostile tar created %s", p)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(hostileTar(f, "seed"))
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	must(f, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}))
	must(f, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.x", Mode: 0o644}))
	must(f, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh..wh..opq", Mode: 0o644}))
	must(f, tw.Close())
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		blob := filepath.Join(t.TempDir(), "blob")
		must(t, os.WriteFile(blob, data, 0o644))
		box := t.TempDir()
		dest := filepath.Join(box, "dest")
		must(t, os.Mkdir(dest, 0o755))
		_ = Unpack(context.Background(), blob, "application/vnd.oci.image.layer.v1.tar", dest, UnpackOptions{Rootless: os.Geteuid() != 0})
		checkContained(t, box)
	})
}

func TestReaderWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ReaderWithContext(ctx, strings.NewReader("abcdef"))
	p := make([]byte, 3)
	if n, err := r.Read(p); n != 3 || err != nil || string(p) != "abc" {
		t.Fatalf("before cancel: %d %q %v", n, p[:n], err)
	}
	cancel()
	if n, err := r.Read(p); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %d, %v; want 0, context.Canceled", n, err)
	}
}
