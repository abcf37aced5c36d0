package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/layertype"
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

// readaheadBlob returns a tar layer of type typ whose compressed stream
// goes on, in the tar's frame (gzip member) and one more, for megabytes of
// padding after the tar end marker, so that the decoder is still reading
// the blob, in goroutines of its own, when the extraction is done; and the
// layer's diff ID, which covers the padding.
func readaheadBlob(t *testing.T, typ layertype.Type) ([]byte, digest.Digest) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}))
	body := bytes.Repeat([]byte("layer body\n"), 1<<14)
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "d/f", Mode: 0o644, Size: int64(len(body))}))
	_, err := tw.Write(body)
	must(t, err)
	must(t, tw.Close())
	// Random padding, so that it has blocks to read and decode.
	pad := make([]byte, 6<<20)
	_, _ = rand.NewChaCha8([32]byte{}).Read(pad)
	frames := [][]byte{append(tb.Bytes(), pad[:4<<20]...), pad[4<<20:]}
	var blob bytes.Buffer
	diff := digest.SHA256.Digester()
	for _, fr := range frames {
		var zw io.WriteCloser
		switch typ {
		case layertype.TarZstd:
			zw, err = zstd.NewWriter(&blob)
		case layertype.TarGzip:
			zw = pgzip.NewWriter(&blob)
		default:
			t.Fatalf("no compressor for %s", typ)
		}
		must(t, err)
		_, err = zw.Write(fr)
		must(t, err)
		must(t, zw.Close())
		diff.Hash().Write(fr)
	}
	return blob.Bytes(), diff.Digest()
}

// The blob digest is checked by hashing what the decoder reads and then
// the rest of the blob, which unpackTar reads itself: the decoder, which
// reads ahead in goroutines, must be stopped first, or the two share the
// bufio.Reader and the hash. go test -race reports that sharing.
func TestUnpackChecksDigestAfterDecoder(t *testing.T) {
	ctx := context.Background()
	for _, typ := range []layertype.Type{layertype.TarZstd, layertype.TarGzip} {
		t.Run(string(typ), func(t *testing.T) {
			b, diffID := readaheadBlob(t, typ)
			blob := filepath.Join(t.TempDir(), "blob")
			must(t, os.WriteFile(blob, b, 0o644))
			dg := digest.FromBytes(b)
			rootless := os.Geteuid() != 0
			for _, opts := range []UnpackOptions{
				{Digest: dg, Rootless: rootless},
				{Digest: dg, DiffID: diffID, Rootless: rootless},
				{DiffID: diffID, Rootless: rootless},
			} {
				dest := t.TempDir()
				if err := Unpack(ctx, blob, MediaType(typ), dest, opts); err != nil {
					t.Fatalf("digest %t, diff ID %t: %v", opts.Digest != "", opts.DiffID != "", err)
				}
				got, err := os.ReadFile(filepath.Join(dest, "d/f"))
				must(t, err)
				if len(got) != 11<<14 {
					t.Fatalf("d/f has %d bytes", len(got))
				}
			}
			bad := digest.FromString("another blob")
			err := Unpack(ctx, blob, MediaType(typ), t.TempDir(), UnpackOptions{Digest: bad, Rootless: rootless})
			if err == nil || !strings.Contains(err.Error(), bad.String()) {
				t.Fatalf("a wrong digest gave %v", err)
			}
		})
	}
}

// A layer read as it arrives unpacks as its blob does, whatever its
// compression, and a hostile one stays inside dest as well.
func TestUnpackStream(t *testing.T) {
	ctx := context.Background()
	for _, typ := range []layertype.Type{layertype.TarZstd, layertype.TarGzip} {
		b, _ := readaheadBlob(t, typ)
		dest := t.TempDir()
		if err := UnpackStream(ctx, bytes.NewReader(b), "stream", dest, UnpackOptions{Rootless: os.Geteuid() != 0}); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got, err := os.ReadFile(filepath.Join(dest, "d", "f"))
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte("layer body\n"), 1<<14)) {
			t.Errorf("%s: d/f holds %d bytes, %v", typ, len(got), err)
		}
	}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	box := t.TempDir()
	dest := filepath.Join(box, "dest")
	must(t, os.Mkdir(dest, 0o755))
	_ = UnpackStream(ctx, bytes.NewReader(hostileTar(t, tag)), "hostile", dest, UnpackOptions{Rootless: os.Geteuid() != 0})
	checkContained(t, box)
}
