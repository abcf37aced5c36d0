package regcache

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ispecs "github.com/opencontainers/image-spec/specs-go"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// MediaType of a cache record: the config and artifact type of its
// manifest.
const MediaTypeRecord = "application/vnd.strata.cache.record.v1+json"

// TagPrefix starts the tag of every cache record.
const TagPrefix = "strata-cache-"

// Annotations written on a record's manifest so that people browsing the
// registry can tell records apart.
const (
	AnnotationKey   = "dev.strata.cache.key"
	AnnotationImage = "dev.strata.cache.image"
)

// maxRecordSize bounds what Fetch reads of a record or manifest: both are
// a few hundred bytes, and a registry is not trusted to keep them small.
const maxRecordSize = 1 << 20

// Tag returns the tag of the record of key.
func Tag(key digest.Digest) (string, error) {
	if key.Validate() != nil || key.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("cache key %q is not a sha256 digest", key)
	}
	return TagPrefix + key.Encoded(), nil
}

// record is the config blob of a cache record manifest.
type record struct {
	Key    digest.Digest       `json:"key"`
	Image  string              `json:"image"`
	Empty  bool                `json:"empty,omitempty"`
	Layers []storage.LayerBlob `json:"layers"`
	// Labels are the image's generated labels (GenerateLabels).
	Labels map[string]string `json:"labels,omitempty"`
}

// encode returns the record's config and manifest bytes. Both are
// deterministic, so two stores that built the same layers upload the same
// record.
func encode(rec *storage.Record) (config, manifest []byte, err error) {
	r := record{Key: rec.Key, Image: rec.Image, Empty: rec.Empty, Layers: rec.Layers, Labels: rec.Labels}
	if r.Layers == nil {
		r.Layers = []storage.LayerBlob{}
	}
	config, err = json.Marshal(r)
	if err != nil {
		return nil, nil, err
	}
	m := ispec.Manifest{
		Versioned:    ispecs.Versioned{SchemaVersion: 2},
		MediaType:    ispec.MediaTypeImageManifest,
		ArtifactType: MediaTypeRecord,
		Config:       ispec.Descriptor{MediaType: MediaTypeRecord, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:       []ispec.Descriptor{},
		Annotations:  map[string]string{AnnotationKey: rec.Key.String(), AnnotationImage: rec.Image},
	}
	for _, b := range rec.Layers {
		m.Layers = append(m.Layers, ispec.Descriptor{MediaType: b.Descriptor.MediaType, Digest: b.Descriptor.Digest, Size: b.Descriptor.Size, Annotations: b.Descriptor.Annotations})
	}
	manifest, err = json.Marshal(m)
	return config, manifest, err
}

// decode checks a fetched manifest and its record against the key asked
// for and returns the record. Everything is checked before any blob is
// downloaded: a record is data from the network.
func decode(key digest.Digest, m ispec.Manifest, config []byte) (*record, error) {
	if m.Config.MediaType != MediaTypeRecord {
		return nil, fmt.Errorf("not a strata cache record (config media type %q)", m.Config.MediaType)
	}
	var r record
	if err := json.Unmarshal(config, &r); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if r.Key != key {
		return nil, fmt.Errorf("record is for key %s, not %s", r.Key, key)
	}
	if r.Empty != (len(r.Layers) == 0) {
		return nil, fmt.Errorf("record says empty=%v but lists %d layers", r.Empty, len(r.Layers))
	}
	seen := map[layertype.Type]bool{}
	for _, b := range r.Layers {
		// The decoder refused a type that is not a canonical name; one
		// that is missing or listed twice is left.
		if b.Type == "" || seen[b.Type] {
			return nil, fmt.Errorf("record lists layer type %q", b.Type)
		}
		seen[b.Type] = true
		if err := b.Descriptor.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%s layer: %w", b.Type, err)
		}
		if _, err := digest.Parse(b.DiffID); err != nil {
			return nil, fmt.Errorf("%s layer diff id: %w", b.Type, err)
		}
		if _, err := layer.TypeOfMediaType(b.Descriptor.MediaType); err != nil {
			return nil, fmt.Errorf("%s layer: %w", b.Type, err)
		}
		if b.Descriptor.Size < 0 || !inManifest(m, b.Descriptor) {
			return nil, fmt.Errorf("%s layer %s is not a layer of the record's manifest", b.Type, b.Descriptor.Digest)
		}
	}
	return &r, nil
}

func inManifest(m ispec.Manifest, d ispec.Descriptor) bool {
	for _, l := range m.Layers {
		if l.Digest == d.Digest && l.Size == d.Size {
			return true
		}
	}
	return false
}

// unpackable picks the blob to unpack as the layer folder: a tar when
// there is one (any OCI tool made it), squashfs otherwise.
func unpackable(layers []storage.LayerBlob) storage.LayerBlob {
	for _, b := range layers {
		if b.Type.Tar() {
			return b
		}
	}
	return layers[0]
}
