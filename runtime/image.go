package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/fetch"
)

// baseConfig is the config of the external base at the root of n's chain
// (zero for scratch).
func (b *builder) baseConfig(ctx context.Context, n *dsl.Node) (v1.ImageConfig, error) {
	base, err := b.base(ctx, n.Root())
	if err != nil || base == nil {
		return v1.ImageConfig{}, err
	}
	return base.Config.Config, nil
}

// TagName is the tag of an image's encoding t: the first layer type of a
// build gets the plain name, others a suffix.
func TagName(name string, t layertype.Type, first bool) string {
	if first {
		return name
	}
	switch t {
	case layertype.Squashfs:
		return name + "-squashfs"
	case layertype.TarZstd:
		return name + "-zstd"
	default:
		return name + "-tar"
	}
}

// tag writes n's manifest for every layer type and tags it in the layout.
func (b *builder) tag(ctx context.Context, n *dsl.Node) error {
	if n.Image.IsBuildOnly() || b.opts.Layout == nil {
		return nil
	}
	for i, t := range n.LayerTypes {
		desc, err := b.assemble(ctx, n, t)
		if err != nil {
			return fmt.Errorf("image %q: %w", n.Name, err)
		}
		if err := b.opts.Layout.Tag(ctx, b.opts.Store, TagName(n.Name, t, i == 0), desc); err != nil {
			return fmt.Errorf("image %q: %w", n.Name, err)
		}
	}
	return nil
}

// assemble writes the config and manifest of n in layer type t into the
// store. Everything in them derives from the definitions, the base and the
// committed layers, never from the clock, so they are reproducible.
func (b *builder) assemble(ctx context.Context, n *dsl.Node, t layertype.Type) (v1.Descriptor, error) {
	created := time.Unix(b.opts.SourceDateEpoch, 0).UTC()
	spec := storage.ImageSpec{Created: created, Annotations: map[string]string{}}
	var baseCfg v1.ImageConfig
	base, err := b.base(ctx, n.Root())
	if err != nil {
		return v1.Descriptor{}, err
	}
	if base != nil {
		// The base's diff IDs go into this image's config: they must be
		// its layers' (checked when unpacked, or now if never unpacked).
		if err := b.opts.Store.VerifyDiffIDs(ctx, base); err != nil {
			return v1.Descriptor{}, fmt.Errorf("base: %w", err)
		}
		baseCfg = base.Config.Config
		layers, err := b.baseLayers(ctx, n.Root(), base, t)
		if err != nil {
			return v1.Descriptor{}, err
		}
		spec.Layers = append(spec.Layers, layers...)
		spec.DiffIDs = append(spec.DiffIDs, base.Config.RootFS.DiffIDs...)
		spec.History = append(spec.History, base.Config.History...)
	}
	for _, c := range n.Chain() {
		rec, _, err := b.opts.Store.Lookup(c.Key)
		if err != nil {
			return v1.Descriptor{}, err
		}
		if rec == nil {
			return v1.Descriptor{}, fmt.Errorf("layer of %q is not in the store", c.Name)
		}
		h := v1.History{Created: &created, CreatedBy: "strata build " + c.Name, EmptyLayer: rec.Empty}
		spec.History = append(spec.History, h)
		if rec.Empty {
			continue
		}
		if _, ok := rec.Blob(t); !ok {
			// An ancestor committed by an earlier build, for images of
			// other types: encode its layer folder now.
			var encoded []layertype.Type
			rec, encoded, err = b.ensureTypes(ctx, c, rec, []layertype.Type{t})
			if err != nil {
				return v1.Descriptor{}, err
			}
			if len(encoded) > 0 {
				b.con.printf("%s: encoded as %s (for %s)\n", c.Name, joinTypes(encoded), n.Name)
			}
		}
		blob, ok := rec.Blob(t)
		if !ok {
			return v1.Descriptor{}, fmt.Errorf("layer of %q was not built as %s", c.Name, t)
		}
		spec.Layers = append(spec.Layers, blob.Descriptor)
		spec.DiffIDs = append(spec.DiffIDs, digest.Digest(blob.DiffID))
	}
	spec.Config = n.Config(baseCfg)
	for k, v := range b.opts.Annotations {
		spec.Annotations[k] = v
	}
	spec.Annotations["org.opencontainers.image.title"] = n.Name
	return b.opts.Store.PutImage(ctx, spec)
}

// baseLayers are the layers of n's external base in an image of layer
// type t. A rootfs tarball is strata's to encode, so it follows the
// build's tar type (a .tar.zst base under gzip layers would make an image
// that older runtimes cannot read). The layers of registry and layout
// bases stay as published: recompressing them would change digests that
// signatures, provenance and cross-repository mounts refer to. Squashfs
// images keep their bases' tar layers, as before.
func (b *builder) baseLayers(ctx context.Context, root *dsl.Node, base *storage.BaseImage, t layertype.Type) ([]v1.Descriptor, error) {
	if _, ok := root.Base.(*dsl.TarballBase); !ok || t == layertype.Squashfs {
		return base.Manifest.Layers, nil
	}
	out := make([]v1.Descriptor, len(base.Manifest.Layers))
	for i, l := range base.Manifest.Layers {
		d, err := fetch.TarballLayer(ctx, b.opts.Store, l.Digest, t)
		if err != nil {
			return nil, fmt.Errorf("base tarball as %s: %w", t, err)
		}
		out[i] = d
	}
	return out, nil
}
