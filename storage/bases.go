package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/umoci/oci/cas/dir"
	"github.com/opencontainers/umoci/oci/casext"

	"github.com/strata-build/strata/internal/ociindex"
)

// BaseImage is an external base image whose blobs are in the store.
type BaseImage struct {
	Manifest   v1.Manifest
	Config     v1.Image
	Descriptor v1.Descriptor
	// Source names where the image came from (a layout and tag, a
	// reference, a tarball) in the errors of its unpack.
	Source string
}

// TagNotFoundError says that an OCI layout has no image of that tag.
type TagNotFoundError struct {
	Layout, Tag string
	Tags        []string // those it has
}

func (e *TagNotFoundError) Error() string {
	has := "no tags"
	if len(e.Tags) > 0 {
		has = "tags: " + strings.Join(e.Tags, ", ")
	}
	return fmt.Sprintf("OCI layout %s has no image tagged %q (%s)", e.Layout, e.Tag, has)
}

// ImportLayout copies the image tagged tag in the OCI layout at path into
// the store's blob store and returns it. A tag that names an index is
// resolved, through nested indexes, to the manifest of this machine's
// platform (ociindex.Resolve, as evaluation resolves it for the cache key).
// Every descriptor's claims are checked while reading: a blob whose size
// is not the one its descriptor gives is refused, naming it.
func (s *Store) ImportLayout(ctx context.Context, path, tag string) (*BaseImage, error) {
	engine, err := dir.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	src := casext.NewEngine(engine)
	defer src.Close()
	idx, err := src.GetIndex(ctx)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", path, err)
	}
	platform, _ := ociindex.ParsePlatform("")
	tagged, found := ociindex.Tagged(idx.Manifests, tag, platform)
	var tags []string
	for _, e := range idx.Manifests {
		if name := e.Annotations[v1.AnnotationRefName]; name != "" && name != tag {
			tags = append(tags, name)
		}
	}
	if !found {
		sort.Strings(tags)
		return nil, &TagNotFoundError{Layout: path, Tag: tag, Tags: tags}
	}
	open := func(d v1.Descriptor) (io.ReadCloser, error) { return src.GetBlob(ctx, d.Digest) }
	desc, raw, err := ociindex.Resolve(tagged, platform, open)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: tag %q: %w", path, tag, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("OCI layout %s: manifest of %q: %w", path, tag, err)
	}
	var cfg v1.Image
	if err := readJSONChecked(m.Config, open, &cfg); err != nil {
		return nil, fmt.Errorf("OCI layout %s: config of %q: %w", path, tag, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("OCI layout %s: %q: manifest %s has %d layers but its config %s %d diff IDs", path, tag, desc.Digest, len(m.Layers), m.Config.Digest, len(cfg.RootFS.DiffIDs))
	}
	for _, d := range append([]v1.Descriptor{desc, m.Config}, m.Layers...) {
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("OCI layout %s: %q: bad digest %q: %w", path, tag, d.Digest, err)
		}
		if err := s.copyBlobFrom(ctx, path, src, d); err != nil {
			return nil, fmt.Errorf("OCI layout %s: %q: %w", path, tag, err)
		}
	}
	return &BaseImage{Manifest: m, Config: cfg, Descriptor: desc, Source: fmt.Sprintf("OCI layout %s:%s", path, tag)}, nil
}

// readJSONChecked decodes the small JSON blob d, checked against its
// descriptor's size and digest.
func readJSONChecked(d v1.Descriptor, open ociindex.Open, v any) error {
	b, err := ociindex.ReadChecked(d, open)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return nil
}

// copyBlobFrom brings a blob into the store, hard-linking when the source
// layout is on the same file system (the common case of building on the
// output layout) and copying with verification otherwise.
func (s *Store) copyBlobFrom(ctx context.Context, layoutPath string, src casext.Engine, desc v1.Descriptor) error {
	d := desc.Digest
	srcPath := ociindex.LayoutBlobPath(layoutPath, d)
	// The size a descriptor claims is checked here, before anything is
	// linked or copied: the blob's digest is checked when it is read (its
	// unpack, or the copy below), but a descriptor that lies about the
	// size would otherwise be written as is into the images built on it.
	fi, err := os.Stat(srcPath)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if fi.Size() != desc.Size {
		return fmt.Errorf("blob %s has %d bytes but its descriptor claims %d", d, fi.Size(), desc.Size)
	}
	dst := s.BlobPath(d.String())
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(srcPath, dst); err == nil {
		return nil
	}
	r, err := src.GetVerifiedBlob(ctx, desc)
	if err != nil {
		return fmt.Errorf("read blob %s: %w", d, err)
	}
	defer r.Close()
	got, _, err := s.cas.PutBlob(ctx, r)
	if err != nil {
		return fmt.Errorf("copy blob %s: %w", d, err)
	}
	if got != d {
		return fmt.Errorf("blob %s has digest %s", d, got)
	}
	return nil
}

func readJSONBlob(ctx context.Context, e casext.Engine, d digest.Digest, v any) error {
	b, err := readSmallBlob(ctx, e, d)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// readSmallBlob reads blob d of e, up to 32 MiB (a config, a manifest, an
// SBOM), and checks it against its digest.
func readSmallBlob(ctx context.Context, e casext.Engine, d digest.Digest) ([]byte, error) {
	r, err := e.GetBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 32<<20))
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s does not match its digest", d)
	}
	return b, nil
}
