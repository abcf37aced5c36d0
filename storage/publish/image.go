package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	ggcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/storage"
)

// Image presents the manifest rawManifest, whose blobs are in st's blob
// store, as a go-containerregistry image. extra holds blobs that are not
// in the store (a cache record's config, built in memory), by digest.
// Every byte read from a layer for an upload is added to counter when it
// is not nil.
func Image(st *storage.Store, rawManifest []byte, extra map[digest.Digest][]byte, counter *atomic.Int64) (ggcr.Image, error) {
	var m ispec.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	core := &storeImage{st: st, raw: rawManifest, manifest: m, extra: extra, counter: counter}
	cfg, err := core.blob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	core.config = cfg
	return partial.CompressedToImage(core)
}

// StoreImage reads the manifest desc from st and returns it as Image does.
func StoreImage(st *storage.Store, desc ispec.Descriptor, counter *atomic.Int64) (ggcr.Image, error) {
	raw, err := os.ReadFile(st.BlobPath(desc.Digest.String()))
	if err != nil {
		return nil, fmt.Errorf("manifest %s is not in the store: %w", desc.Digest, err)
	}
	if digest.FromBytes(raw) != desc.Digest {
		return nil, fmt.Errorf("manifest %s in the store is corrupt", desc.Digest)
	}
	return Image(st, raw, nil, counter)
}

// storeImage is the minimal core go-containerregistry extends into a full
// image: the raw manifest keeps its exact bytes, so the pushed digest is
// the built one.
type storeImage struct {
	st       *storage.Store
	raw      []byte
	manifest ispec.Manifest
	config   []byte
	extra    map[digest.Digest][]byte
	counter  *atomic.Int64
}

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.config, nil }

func (i *storeImage) RawManifest() ([]byte, error) { return i.raw, nil }

func (i *storeImage) MediaType() (types.MediaType, error) {
	if i.manifest.MediaType != "" {
		return types.MediaType(i.manifest.MediaType), nil
	}
	return types.OCIManifestSchema1, nil
}

// blob reads a small blob (a config) from extra or the store, verified.
func (i *storeImage) blob(d digest.Digest) ([]byte, error) {
	if b, ok := i.extra[d]; ok {
		return b, nil
	}
	b, err := os.ReadFile(i.st.BlobPath(d.String()))
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s in the store is corrupt", d)
	}
	return b, nil
}

func (i *storeImage) LayerByDigest(h ggcr.Hash) (partial.CompressedLayer, error) {
	d := digest.Digest(h.String())
	if d == i.manifest.Config.Digest {
		return &storeLayer{desc: i.manifest.Config, data: i.config}, nil
	}
	for _, l := range i.manifest.Layers {
		if l.Digest == d {
			return &storeLayer{desc: l, path: i.st.BlobPath(d.String()), counter: i.counter}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not part of the image", d)
}

// storeLayer is one blob of the image: a file of the store, or bytes in
// memory for a config.
type storeLayer struct {
	desc    ispec.Descriptor
	path    string
	data    []byte
	counter *atomic.Int64
}

func (l *storeLayer) Digest() (ggcr.Hash, error) { return ggcr.NewHash(l.desc.Digest.String()) }

func (l *storeLayer) Size() (int64, error) { return l.desc.Size, nil }

func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

// Compressed opens the blob for an upload. go-containerregistry calls it
// only for blobs the registry has neither in the repository nor can mount,
// so what the counter sees is what was really sent.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	if l.path == "" {
		return io.NopCloser(bytes.NewReader(l.data)), nil
	}
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("layer %s is not in the store: %w", l.desc.Digest, err)
	}
	if l.counter == nil {
		return f, nil
	}
	return &countingReader{ReadCloser: f, n: l.counter}, nil
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
