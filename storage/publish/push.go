package publish

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/storage/registry"
)

// Options tune Push.
type Options struct {
	// Registry holds credentials and transport settings.
	Registry registry.Options
	// MountFrom names, per layer digest, a repository of the same registry
	// that likely holds the layer already (the repository of the image the
	// layer belongs to): the registry is asked to mount it from there, and
	// only when it cannot is the layer uploaded.
	MountFrom map[digest.Digest]name.Repository
	// Remote are extra go-containerregistry options (retry policy, jobs).
	Remote []remote.Option
}

// Push pushes img to ref. Blobs the repository already has are skipped
// (one HEAD each); the manifest is sent last, so a push that fails half
// way leaves no tag pointing at missing blobs and running it again sends
// only what is still missing.
func Push(ctx context.Context, img ggcr.Image, ref name.Reference, opts Options) error {
	ropts, err := registry.RemoteOptions(ctx, opts.Registry)
	if err != nil {
		return err
	}
	ropts = append(ropts, opts.Remote...)
	if len(opts.MountFrom) > 0 {
		img = &mountingImage{Image: img, from: opts.MountFrom, to: ref.Context()}
	}
	if err := remote.Write(ref, img, ropts...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// mountingImage offers each layer as mountable from the repository that
// MountFrom names, which go-containerregistry turns into a cross-repository
// mount request before it falls back to an upload.
type mountingImage struct {
	ggcr.Image
	from map[digest.Digest]name.Repository
	to   name.Repository
}

func (m *mountingImage) Layers() ([]ggcr.Layer, error) {
	layers, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]ggcr.Layer, len(layers))
	for n, l := range layers {
		out[n] = l
		h, err := l.Digest()
		if err != nil {
			return nil, err
		}
		repo, ok := m.from[digest.Digest(h.String())]
		if !ok || repo.Name() == m.to.Name() || repo.RegistryStr() != m.to.RegistryStr() {
			continue
		}
		out[n] = &remote.MountableLayer{Layer: l, Reference: repo.Digest(h.String())}
	}
	return out, nil
}
