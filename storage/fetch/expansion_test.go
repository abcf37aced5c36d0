package fetch_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/testlayout"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/layer"
)

// bomb writes a gzip tarball of one file of size zero bytes (a few
// hundred KiB on disk) to path and returns its digest and diff ID.
func bomb(t *testing.T, path string, size int64) (digest.Digest, digest.Digest) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blob := digest.SHA256.Digester()
	zw, _ := gzip.NewWriterLevel(io.MultiWriter(f, blob.Hash()), gzip.BestSpeed)
	diff := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, diff.Hash()))
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return blob.Digest(), diff.Digest()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestUnpackStopsAtFreeSpaceFloor unpacks a small gzip tarball that
// expands past the 64 MiB tmpfs holding the store, as a tarball base and
// as a layout base. The unpack must stop once less than the floor would
// be left (ErrFreeSpace, naming the source) and remove what it wrote;
// before, it filled the file system.
func TestUnpackStopsAtFreeSpaceFloor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	ctx := context.Background()
	work := t.TempDir()
	tarball := filepath.Join(work, "bomb.tar.gz")
	d, diffID := bomb(t, tarball, 200<<20)
	layout := filepath.Join(work, "oci")
	blob, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	testlayout.Write(t, layout, "bomb", nil, testlayout.Layer{Blob: blob, MediaType: v1.MediaTypeImageLayerGzip, DiffID: diffID})

	const floor = 24 << 20
	for _, kind := range []string{"tarball", "layout"} {
		t.Run(kind, func(t *testing.T) {
			small := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", small).CombinedOutput(); err != nil {
				t.Skipf("mount tmpfs: %v: %s", err, out)
			}
			t.Cleanup(func() { unix.Unmount(small, unix.MNT_DETACH) })
			st := openStore(t, filepath.Join(small, "store"))
			var img *storage.BaseImage
			var source string
			if kind == "tarball" {
				if err := fetch.IngestFile(ctx, st, tarball, d); err != nil {
					t.Fatal(err)
				}
				img, err = fetch.TarballImage(ctx, st, tarball, d)
				source = tarball
			} else {
				img, err = st.ImportLayout(ctx, layout, "bomb")
				source = layout + ":bomb"
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.UnpackBase(ctx, img, layer.UnpackOptions{MinFree: floor})
			if !errors.Is(err, layer.ErrFreeSpace) || !strings.Contains(err.Error(), source) {
				t.Fatalf("err = %v; want ErrFreeSpace naming %s", err, source)
			}
			t.Log(err)
			for _, sub := range []string{"tmp", "layers"} {
				if ents, _ := os.ReadDir(filepath.Join(st.Root, sub)); len(ents) > 0 {
					t.Errorf("the stopped unpack left %s/%s", sub, ents[0].Name())
				}
			}
			var fs unix.Statfs_t
			if err := unix.Statfs(small, &fs); err != nil {
				t.Fatal(err)
			}
			if free := fs.Bavail * uint64(fs.Bsize); free < 48<<20 {
				t.Errorf("only %d MiB free after the stopped unpack: what it wrote was not removed", free>>20)
			}
		})
	}
}
