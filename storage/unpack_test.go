package storage

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
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

// TestAddBlob adds a second encoding to a committed record.
func TestAddBlob(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, _ := s.NewWorkspace("img")
	os.WriteFile(filepath.Join(ws.Upper, "f"), []byte("x"), 0o644)
	key := digest.FromString("key")
	if _, err := s.Commit(ws, Record{Key: key, Image: "img"}, nil); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(t.TempDir(), "sq")
	os.WriteFile(blob, []byte("squash"), 0o644)
	d := v1.Descriptor{Digest: "sha256:2a7b0d1ed9b7f6b0b1b5c8c1f0ad5a1e0d2ad0a5d1b8e44b0b6b16f9c0e1d2a3", Size: 6}
	rec, err := s.AddBlob(key, CommitBlob{Path: blob, LayerBlob: LayerBlob{Type: "squashfs", Descriptor: d, DiffID: d.Digest.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Blob("squashfs"); !ok {
		t.Fatal("record lacks the added blob")
	}
	got, _, err := s.Lookup(key)
	if err != nil || got == nil {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	if _, ok := got.Blob("squashfs"); !ok {
		t.Error("the stored record lacks the added blob")
	}
	if last := s.Last("img"); last == nil || len(last.Layers) != 1 {
		t.Errorf("last record = %+v", last)
	}
}
