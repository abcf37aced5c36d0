package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageSpec is everything needed to write an image's config and manifest.
type ImageSpec struct {
	Config      v1.ImageConfig
	Layers      []v1.Descriptor
	DiffIDs     []digest.Digest
	History     []v1.History
	Created     time.Time
	Annotations map[string]string
}

// PutImage writes the config and manifest of spec into the blob store and
// returns the manifest's descriptor. The JSON is deterministic, so the same
// spec always gives the same digests.
func (s *Store) PutImage(ctx context.Context, spec ImageSpec) (v1.Descriptor, error) {
	created := spec.Created.UTC()
	img := v1.Image{
		Created:  &created,
		Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   spec.Config,
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: spec.DiffIDs},
		History:  spec.History,
	}
	if img.RootFS.DiffIDs == nil {
		img.RootFS.DiffIDs = []digest.Digest{}
	}
	cfgDesc, err := s.putJSON(ctx, v1.MediaTypeImageConfig, img)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image config: %w", err)
	}
	layers := spec.Layers
	if layers == nil {
		layers = []v1.Descriptor{}
	}
	m := v1.Manifest{
		Versioned:   ispec.Versioned{SchemaVersion: 2},
		MediaType:   v1.MediaTypeImageManifest,
		Config:      cfgDesc,
		Layers:      layers,
		Annotations: spec.Annotations,
	}
	desc, err := s.putJSON(ctx, v1.MediaTypeImageManifest, m)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write image manifest: %w", err)
	}
	desc.Platform = &img.Platform
	return desc, nil
}

func (s *Store) putJSON(ctx context.Context, mediaType string, v any) (v1.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return s.putBytes(ctx, mediaType, b)
}

// putBytes writes the blob b, kept when already there whole.
func (s *Store) putBytes(ctx context.Context, mediaType string, b []byte) (v1.Descriptor, error) {
	desc := v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	// A cached build assembles the same configs and manifests again:
	// the CAS would write and fsync each one anew. A blob already there
	// whole (read back, since a power loss can truncate it) is kept.
	if old, err := os.ReadFile(s.BlobPath(desc.Digest.String())); err == nil && bytes.Equal(old, b) {
		return desc, nil
	}
	d, size, err := s.cas.PutBlob(ctx, bytes.NewReader(b))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if d != desc.Digest || size != desc.Size {
		return v1.Descriptor{}, fmt.Errorf("the blob store wrote %s (%d bytes) for %s (%d bytes)", d, size, desc.Digest, desc.Size)
	}
	return desc, nil
}

// ReadManifest reads a manifest and its config from the blob store.
func (s *Store) ReadManifest(ctx context.Context, d digest.Digest) (v1.Manifest, v1.Image, error) {
	var m v1.Manifest
	var cfg v1.Image
	if err := readJSONBlob(ctx, s.cas, d, &m); err != nil {
		return m, cfg, err
	}
	if err := readJSONBlob(ctx, s.cas, m.Config.Digest, &cfg); err != nil {
		return m, cfg, err
	}
	return m, cfg, nil
}
