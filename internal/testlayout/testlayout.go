// Package testlayout writes small OCI image layouts for tests, including
// ones whose claims lie (sizes, diff IDs), which real tools never write.
package testlayout

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is one layer blob and the diff ID its image's config claims for
// it (the digest of the uncompressed tar, unless a test lies).
type Layer struct {
	Blob      []byte
	MediaType string
	DiffID    digest.Digest
}

// Edit may change the manifest and the index.json entry before they are
// written (the manifest's digest and size are filled in after Edit).
type Edit func(m *v1.Manifest, entry *v1.Descriptor)

// Put writes b as a blob of the layout at dir and returns its descriptor
// (digest and size; the media type is the caller's).
func Put(t testing.TB, dir string, b []byte) v1.Descriptor {
	t.Helper()
	d := digest.FromBytes(b)
	p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{Digest: d, Size: int64(len(b))}
}

// Write writes a one-image OCI layout at dir, the image tagged tag, and
// returns the index.json entry it wrote.
func Write(t testing.TB, dir, tag string, edit Edit, layers ...Layer) v1.Descriptor {
	t.Helper()
	put := func(b []byte) v1.Descriptor { return Put(t, dir, b) }
	cfg := v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}}
	m := v1.Manifest{Versioned: ispec.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest, Layers: []v1.Descriptor{}}
	for _, l := range layers {
		d := put(l.Blob)
		d.MediaType = l.MediaType
		m.Layers = append(m.Layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = put(b)
	m.Config.MediaType = v1.MediaTypeImageConfig
	entry := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Annotations: map[string]string{v1.AnnotationRefName: tag}}
	if edit != nil {
		edit(&m, &entry)
	}
	b, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d := put(b)
	entry.Digest = d.Digest
	if entry.Size == 0 {
		entry.Size = d.Size
	}
	idx, err := json.Marshal(v1.Index{Versioned: ispec.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{entry}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return entry
}
