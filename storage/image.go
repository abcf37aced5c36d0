package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/umoci/oci/cas/dir"
	"github.com/opencontainers/umoci/oci/casext"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/ociindex"
	"github.com/strata-build/strata/storage/layer"
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
	e, found := ociindex.Tagged(idx.Manifests, tag, platform)
	tagged := &e
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
	desc, err := ociindex.Resolve(*tagged, platform, open)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: tag %q: %w", path, tag, err)
	}
	var m v1.Manifest
	if err := readJSONChecked(desc, open, &m); err != nil {
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
	srcPath := filepath.Join(layoutPath, "blobs", d.Algorithm().String(), d.Encoded())
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
	r, err := e.GetBlob(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 32<<20))
	if err != nil {
		return err
	}
	if digest.FromBytes(b) != d {
		return fmt.Errorf("blob %s does not match its digest", d)
	}
	return json.Unmarshal(b, v)
}

// Unpacked returns the folder holding the layer blob desc unpacked in
// overlay format, unpacking it first if this store never did. Each
// distinct layer is unpacked once and shared by every image above it.
// When opts.DiffID is set (the diff ID an image config claims for the
// layer), the layer's uncompressed content is checked against it: during
// the unpack, or against what this store measured when it unpacked it
// before (see checkDiffID).
func (s *Store) Unpacked(ctx context.Context, desc v1.Descriptor, opts layer.UnpackOptions) (string, error) {
	if err := desc.Digest.Validate(); err != nil {
		return "", fmt.Errorf("layer digest %q: %w", desc.Digest, err)
	}
	dst := s.LayerDir("b-" + desc.Digest.Encoded())
	if _, err := os.Stat(dst); err == nil {
		return dst, s.checkDiffID(ctx, desc, opts.DiffID)
	}
	// Images built in parallel on one base ask for its layers at once:
	// the first unpacks, the others wait for it and share the folder,
	// each checking the diff ID its own config claims.
	for {
		dir, ran, err := s.unpacks.Do(desc.Digest.String(), func() (string, error) {
			if _, err := os.Stat(dst); err == nil {
				return dst, s.checkDiffID(ctx, desc, opts.DiffID)
			}
			return s.unpack(ctx, desc, dst, opts)
		})
		if ran {
			return dir, err
		}
		if _, err := os.Stat(dst); err == nil {
			return dst, s.checkDiffID(ctx, desc, opts.DiffID)
		}
		// The unpack this one waited for failed: try its own.
	}
}

// unpack unpacks the layer blob desc into dst, through a folder under
// tmp/ renamed into place.
func (s *Store) unpack(ctx context.Context, desc v1.Descriptor, dst string, opts layer.UnpackOptions) (string, error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.Root, "tmp"), "unpack-")
	if err != nil {
		return "", err
	}
	defer removeAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", err
	}
	claim := opts.DiffID
	opts.Digest = desc.Digest
	if t, _ := layer.TypeOfMediaType(desc.MediaType); t == layertype.Squashfs {
		// A squashfs layer is not compressed: its diff ID is its digest,
		// which the unpack checks.
		if claim != "" && claim != desc.Digest {
			return "", diffIDError(desc, claim, desc.Digest)
		}
		opts.DiffID = ""
	}
	if err := layer.Unpack(ctx, s.BlobPath(desc.Digest.String()), desc.MediaType, root, opts); err != nil {
		if errors.Is(err, layer.ErrDiffID) {
			return "", fmt.Errorf("unpack layer %s: its image config's rootfs.diff_ids claims %s: %w", desc.Digest, claim, err)
		}
		return "", fmt.Errorf("unpack layer %s: %w", desc.Digest, err)
	}
	if claim != "" {
		// Verified in the unpack: later claims about this layer are
		// compared with it without reading the blob again.
		if err := s.recordDiffID(desc.Digest, claim); err != nil {
			return "", err
		}
	}
	if err := os.Rename(root, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// UnpackAll unpacks the given layers in parallel and returns their
// folders in the same order.
func (s *Store) UnpackAll(ctx context.Context, descs []v1.Descriptor, opts layer.UnpackOptions) ([]string, error) {
	return s.unpackAll(ctx, descs, nil, opts)
}

// UnpackBase unpacks the layers of the base img as UnpackAll does, each
// checked against the diff ID img's config claims for it, so that an image
// built on it never carries a config that contradicts its layers. Its
// errors name img.Source. An unpack that fails (one that would leave less
// free space than opts.MinFree, say) leaves nothing behind (see Unpacked).
func (s *Store) UnpackBase(ctx context.Context, img *BaseImage, opts layer.UnpackOptions) ([]string, error) {
	if err := diffIDCount(img); err != nil {
		return nil, s.baseError(img, err)
	}
	dirs, err := s.unpackAll(ctx, img.Manifest.Layers, img.Config.RootFS.DiffIDs, opts)
	return dirs, s.baseError(img, err)
}

func (s *Store) baseError(img *BaseImage, err error) error {
	if err == nil || img.Source == "" || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%s: %w", img.Source, err)
}

func (s *Store) unpackAll(ctx context.Context, descs []v1.Descriptor, diffIDs []digest.Digest, opts layer.UnpackOptions) ([]string, error) {
	dirs := make([]string, len(descs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for n, d := range descs {
		o := opts
		if diffIDs != nil {
			o.DiffID = diffIDs[n]
		}
		g.Go(func() error {
			p, err := s.Unpacked(ctx, d, o)
			dirs[n] = p
			return err
		})
	}
	return dirs, g.Wait()
}

// VerifyDiffIDs checks every diff ID the config of the base img claims
// against its layer: by what this store measured when it unpacked the
// layer (UnpackBase), or, for a layer never unpacked here (an image with
// no steps on it), by reading the blob once now.
func (s *Store) VerifyDiffIDs(ctx context.Context, img *BaseImage) error {
	if err := diffIDCount(img); err != nil {
		return s.baseError(img, err)
	}
	for n, d := range img.Manifest.Layers {
		if err := s.checkDiffID(ctx, d, img.Config.RootFS.DiffIDs[n]); err != nil {
			return s.baseError(img, err)
		}
	}
	return nil
}

func diffIDCount(img *BaseImage) error {
	if n, m := len(img.Config.RootFS.DiffIDs), len(img.Manifest.Layers); n != m {
		return fmt.Errorf("manifest %s has %d layers but its config %s claims %d rootfs.diff_ids", img.Descriptor.Digest, m, img.Manifest.Config.Digest, n)
	}
	return nil
}

// checkDiffID compares claim (if any) with the diff ID of the layer desc,
// as recorded by the unpack that verified it, or measured now from the
// blob and recorded.
func (s *Store) checkDiffID(ctx context.Context, desc v1.Descriptor, claim digest.Digest) error {
	if claim == "" {
		return nil
	}
	if err := claim.Validate(); err != nil {
		return fmt.Errorf("layer %s: its image config's rootfs.diff_ids claims %q: %w", desc.Digest, claim, err)
	}
	got := s.recordedDiffID(desc.Digest)
	if got == "" {
		measured, err := layer.DiffIDOf(ctx, s.BlobPath(desc.Digest.String()), desc.MediaType)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		got = measured
		if got == claim {
			if err := s.recordDiffID(desc.Digest, got); err != nil {
				return err
			}
		}
	}
	if got != claim {
		return diffIDError(desc, claim, got)
	}
	return nil
}

func diffIDError(desc v1.Descriptor, claim, got digest.Digest) error {
	return fmt.Errorf("layer %s: its image config's rootfs.diff_ids claims %s, but its content is %s: %w", desc.Digest, claim, got, layer.ErrDiffID)
}

// diffIDPath is where the store records the diff ID it verified for the
// layer blob d.
func (s *Store) diffIDPath(d digest.Digest) string {
	return filepath.Join(s.Root, "diffids", d.Algorithm().String(), d.Encoded())
}

func (s *Store) recordedDiffID(d digest.Digest) digest.Digest {
	b, err := os.ReadFile(s.diffIDPath(d))
	if err != nil {
		return ""
	}
	got := digest.Digest(b)
	if got.Validate() != nil {
		return "" // damaged: measure again
	}
	return got
}

// recordDiffID writes the record whole under tmp/ then renames it, so
// that an interrupted write leaves nothing a later build would trust.
func (s *Store) recordDiffID(d, diffID digest.Digest) error {
	p := s.diffIDPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.Root, "tmp"), "diffid-")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(diffID.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record diff ID of layer %s: %w", d, err)
	}
	return nil
}

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
	d, size, err := s.cas.PutBlob(ctx, bytes.NewReader(b))
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: size}, nil
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
