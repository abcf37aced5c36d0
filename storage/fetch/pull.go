package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/internal/ociindex"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/registry"
)

// PullOptions tune Resolve and Pull.
type PullOptions struct {
	// Registry holds credentials and transport settings. Plain HTTP and
	// unverified TLS are used only when Registry.Insecure is set (by the
	// definition's dsl.Insecure() or the build's --insecure).
	Registry registry.Options
	// Platform selects the image of a multi-platform index, as
	// "os/arch[/variant]"; empty means linux and this machine's arch.
	Platform string
}

// Media types of Docker's distribution format, which registries still
// serve for many images; their JSON has the OCI shape.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Resolve returns the digest the reference ref points at (a manifest or a
// multi-platform index) with one HEAD request; a reference pinned by
// digest costs no request at all.
func Resolve(ctx context.Context, ref string, o PullOptions) (digest.Digest, error) {
	r, err := registry.ParseReference(ref, o.Registry)
	if err != nil {
		return "", err
	}
	if d, ok := r.(name.Digest); ok {
		return digest.Digest(d.DigestStr()), nil // name.Digest checked it
	}
	ropts, err := registry.RemoteOptions(ctx, o.Registry)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(r, ropts...)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", r, explain(err))
	}
	return digest.Digest(desc.Digest.String()), nil
}

// Pull makes the image at ref, pinned to want (a manifest or an index
// digest, usually what Resolve returned), available in the store and
// returns it. Blobs the store already holds are not asked for again: when
// the manifest (or the index), its config and its layers are all there,
// Pull makes no request at all. Every blob fetched is checked against its
// digest before it is stored.
func Pull(ctx context.Context, st *storage.Store, ref string, want digest.Digest, o PullOptions) (*storage.BaseImage, error) {
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("pull %s: digest %q: %w", ref, want, err)
	}
	r, err := registry.ParseReference(ref, o.Registry)
	if err != nil {
		return nil, err
	}
	p := &puller{st: st, repo: r.Context(), o: o}
	img, err := p.image(ctx, want, -1)
	if err != nil {
		return nil, fmt.Errorf("pull %s (%s): %w", r, want, err)
	}
	img.Source = r.String()
	return img, nil
}

type puller struct {
	st    *storage.Store
	repo  name.Repository
	o     PullOptions
	ropts []remote.Option
}

// remote returns the registry options, set up on first use so that a pull
// served from the store touches neither credentials nor the network.
func (p *puller) remote(ctx context.Context) ([]remote.Option, error) {
	if p.ropts == nil {
		ro, err := registry.RemoteOptions(ctx, p.o.Registry)
		if err != nil {
			return nil, err
		}
		p.ropts = ro
	}
	return p.ropts, nil
}

// manifest is the fields of a manifest or an index that Pull reads.
type manifest struct {
	MediaType string          `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
}

// image reads the manifest or index d, whose descriptor claims size bytes
// (-1: d came from a tag or a pin, which claim no size).
func (p *puller) image(ctx context.Context, d digest.Digest, size int64) (*storage.BaseImage, error) {
	raw, err := p.manifestBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	if size >= 0 && int64(len(raw)) != size {
		return nil, fmt.Errorf("manifest %s has %d bytes but its index entry claims %d", d, len(raw), size)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	// Digests name files in the store: one that is not well formed
	// ("sha256:../../x") must never reach a path.
	for _, list := range [][]v1.Descriptor{m.Layers, m.Manifests} {
		for _, l := range list {
			if err := l.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("manifest %s: bad digest %q: %w", d, l.Digest, err)
			}
		}
	}
	if m.Config != nil {
		if err := m.Config.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("manifest %s: bad config digest %q: %w", d, m.Config.Digest, err)
		}
	}
	if m.Manifests != nil || m.MediaType == v1.MediaTypeImageIndex || m.MediaType == dockerManifestList {
		child, err := choose(m.Manifests, p.o.Platform)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d, err)
		}
		return p.image(ctx, child.Digest, child.Size)
	}
	if m.Config == nil {
		return nil, fmt.Errorf("manifest %s has no config (media type %q)", d, m.MediaType)
	}
	if err := p.blob(ctx, *m.Config); err != nil {
		return nil, err
	}
	cfgRaw, err := readSmallBlob(p.st, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	var cfg v1.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers but its config %d diff IDs", d, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(4)
	if _, err := p.remoteIfMissing(ctx, m.Layers); err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		g.Go(func() error { return p.blob(ctx, l) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// The output image is OCI: Docker media types of the same bytes are
	// written under their OCI names.
	out := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: *m.Config}
	out.SchemaVersion = 2
	out.Config.MediaType = v1.MediaTypeImageConfig
	for _, l := range m.Layers {
		switch l.MediaType {
		case dockerLayerGzip, dockerLayerForeign:
			l.MediaType = v1.MediaTypeImageLayerGzip
		}
		l.URLs = nil
		out.Layers = append(out.Layers, l)
	}
	return &storage.BaseImage{
		Manifest:   out,
		Config:     cfg,
		Descriptor: v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: d, Size: int64(len(raw))},
	}, nil
}

// remoteIfMissing sets up the registry options before parallel fetches
// when any blob is missing, so the goroutines share one set.
func (p *puller) remoteIfMissing(ctx context.Context, descs []v1.Descriptor) ([]remote.Option, error) {
	for _, l := range descs {
		if !haveBlob(p.st, l.Digest) {
			return p.remote(ctx)
		}
	}
	return nil, nil
}

// manifestBlob returns the manifest or index d from the store, fetching it
// first when the store lacks it.
func (p *puller) manifestBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	if haveBlob(p.st, d) {
		return readSmallBlob(p.st, d)
	}
	ropts, err := p.remote(ctx)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(p.repo.Digest(d.String()), ropts...)
	if err != nil {
		return nil, explain(err)
	}
	if len(desc.Manifest) > maxManifestSize {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", d, maxManifestSize)
	}
	if err := putVerified(ctx, p.st, strings.NewReader(string(desc.Manifest)), d, p.mismatch("manifest", d)); err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

// blob makes the config or layer desc available in the store, and checks
// that it has the size desc claims: the manifest's descriptors are copied
// into the images built on it, and must not lie.
func (p *puller) blob(ctx context.Context, desc v1.Descriptor) error {
	if fi, err := os.Stat(p.st.BlobPath(desc.Digest.String())); err == nil {
		if fi.Size() != desc.Size {
			return fmt.Errorf("blob %s has %d bytes but its descriptor claims %d", desc.Digest, fi.Size(), desc.Size)
		}
		return nil
	}
	if desc.Size < 0 {
		return fmt.Errorf("blob %s: its descriptor claims %d bytes", desc.Digest, desc.Size)
	}
	ropts, err := p.remote(ctx)
	if err != nil {
		return err
	}
	l, err := remote.Layer(p.repo.Digest(desc.Digest.String()), ropts...)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, explain(err))
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, explain(err))
	}
	defer rc.Close()
	// One byte more than claimed is enough to tell a longer blob, and a
	// claim of 1 TiB fails at the first byte missing, not after it.
	lr := &countingReader{r: io.LimitReader(rc, desc.Size+1)}
	if err := putVerified(ctx, p.st, lr, desc.Digest, func(got digest.Digest) error {
		if lr.n != desc.Size {
			return fmt.Errorf("blob %s has %d bytes but its descriptor claims %d", desc.Digest, lr.n, desc.Size)
		}
		return p.mismatch("blob", desc.Digest)(got)
	}); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, explain(err))
	}
	if lr.n != desc.Size {
		// Its digest matched, so the blob is sound and may stay in the
		// store; the descriptor is what lies.
		return fmt.Errorf("blob %s has %d bytes but its descriptor claims %d", desc.Digest, lr.n, desc.Size)
	}
	return nil
}

func (p *puller) mismatch(what string, want digest.Digest) func(digest.Digest) error {
	return func(got digest.Digest) error {
		return fmt.Errorf("%s from %s: expected %s, got %s: %w", what, p.repo, want, got, ErrDigestMismatch)
	}
}

// choose picks the manifest of platform ("os/arch[/variant]", default
// linux and this machine's arch) from an index, by the rule layout bases
// follow too (ociindex).
func choose(list []v1.Descriptor, platform string) (v1.Descriptor, error) {
	want, err := ociindex.ParsePlatform(platform)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := ociindex.Choose(list, want)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w; choose one with dsl.Platform", err)
	}
	return d, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// ErrPlainHTTP is returned (wrapped) when a registry speaks only plain
// HTTP and the pull was not allowed to use it.
var ErrPlainHTTP = registry.ErrPlainHTTP

// explain turns the TLS error of a plain-HTTP registry into advice.
func explain(err error) error {
	if err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") && !errors.Is(err, ErrPlainHTTP) {
		return fmt.Errorf("%w (%w)", ErrPlainHTTP, err)
	}
	return err
}
