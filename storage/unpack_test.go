package storage

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage/layer"
)

// TestUnpackedOncePerDigest unpacks one layer from many goroutines, as
// images built in parallel on one base do: all share one folder.
func TestUnpackedOncePerDigest(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	up := t.TempDir()
	if err := os.WriteFile(filepath.Join(up, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(t.TempDir(), "blob")
	res, err := layer.Write(ctx, up, layertype.TarGzip, blob, layer.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := s.BlobPath(res.Digest.String())
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := os.Rename(blob, dst); err != nil {
		t.Fatal(err)
	}
	desc := v1.Descriptor{MediaType: res.MediaType, Digest: res.Digest, Size: res.Size}
	descs := []v1.Descriptor{desc, desc, desc, desc}
	var wg sync.WaitGroup
	dirs := make([][]string, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { dirs[i], errs[i] = s.UnpackAll(ctx, descs, layer.UnpackOptions{Rootless: os.Geteuid() != 0}) })
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		for _, d := range dirs[i] {
			if d != dirs[0][0] {
				t.Errorf("layer unpacked into %s and %s", d, dirs[0][0])
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dirs[0][0], "f")); err != nil || string(b) != "x" {
		t.Errorf("unpacked f = %q, %v", b, err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root, "layers"))
	if len(entries) != 1 {
		t.Errorf("layers/ holds %d folders, want 1", len(entries))
	}
}
