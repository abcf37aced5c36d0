package runtime

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage"
)

// TagName is the tag of an image's encoding t: the first layer type of a
// build gets the plain name, others a suffix.
func TagName(name string, t layertype.Type, first bool) string {
	if first {
		return name
	}
	switch t {
	case layertype.Squashfs:
		return name + "-squashfs"
	case layertype.Erofs:
		return name + "-erofs"
	case layertype.TarZstd:
		return name + "-zstd"
	default:
		return name + "-tar"
	}
}

// tag writes n's manifest for every layer type and tags it in the layout,
// with its SBOM as a referrer unless Options.NoSBOM.
func (b *builder) tag(ctx context.Context, n *dsl.Node) error {
	if n.Image.IsBuildOnly() || b.opts.Layout == nil {
		return nil
	}
	scan := b.sbomScan(ctx, n)
	for i, t := range n.LayerTypes {
		desc, err := b.assemble(ctx, n, t, b.opts.Annotations)
		if err != nil {
			return fmt.Errorf("image %q: %w", n.Name, err)
		}
		if err := b.opts.Layout.Tag(ctx, b.opts.Store, TagName(n.Name, t, i == 0), desc); err != nil {
			return fmt.Errorf("image %q: %w", n.Name, err)
		}
		if b.opts.NoSBOM {
			continue
		}
		if err := b.writeSBOM(ctx, n, desc, scan); err != nil {
			return fmt.Errorf("image %q: %w", n.Name, err)
		}
	}
	return nil
}

// assemble writes the config and manifest of n in layer type t into the
// store. Everything in them derives from the definitions, the base and the
// committed layers, never from the clock, so they are reproducible.
func (s *stack) assemble(ctx context.Context, n *dsl.Node, t layertype.Type, annotations map[string]string) (v1.Descriptor, error) {
	img, baseCfg, generated, err := s.chainImage(ctx, n.Root(), n.Chain(), t)
	if err != nil {
		return v1.Descriptor{}, err
	}
	img.Config = n.Config(baseCfg)
	if len(generated) > 0 {
		if img.Config.Labels == nil {
			img.Config.Labels = map[string]string{}
		}
		maps.Copy(img.Config.Labels, generated)
	}
	for k, v := range annotations {
		img.Annotations[k] = v
	}
	img.Annotations["org.opencontainers.image.title"] = n.Name
	maps.Copy(img.Annotations, n.Image.Annotations())
	return s.store.PutImage(ctx, img)
}

// chainImage is the image of root's external base with the committed
// layers of chain (root's images, bottom first) on it, in layer type t,
// encoding what an ancestor lacks: its layers, diff IDs and history, the
// base's config and the labels GenerateLabels gave the chain's images.
// The caller sets the config.
func (s *stack) chainImage(ctx context.Context, root *dsl.Node, chain []*dsl.Node, t layertype.Type) (img storage.ImageSpec, baseCfg v1.ImageConfig, generated map[string]string, err error) {
	created := time.Unix(s.epoch, 0).UTC()
	img = storage.ImageSpec{Created: created, Annotations: map[string]string{}}
	base, err := s.bases.load(ctx, root)
	if err != nil {
		return img, baseCfg, nil, err
	}
	if base != nil {
		// The base's diff IDs go into this image's config: they must be
		// its layers' (checked when unpacked, or now if never unpacked).
		if err := s.store.VerifyDiffIDs(ctx, base); err != nil {
			return img, baseCfg, nil, fmt.Errorf("base: %w", err)
		}
		baseCfg = base.Config.Config
		layers, err := s.bases.layers(ctx, root, base, t)
		if err != nil {
			return img, baseCfg, nil, err
		}
		img.Layers = append(img.Layers, layers...)
		img.DiffIDs = append(img.DiffIDs, base.Config.RootFS.DiffIDs...)
		img.History = append(img.History, base.Config.History...)
	}
	generated = map[string]string{} // by GenerateLabels, of the chain's images
	for _, c := range chain {
		rec, _, err := s.store.Lookup(c.Key)
		if err != nil {
			return img, baseCfg, nil, err
		}
		if rec == nil {
			return img, baseCfg, nil, fmt.Errorf("layer of %q is not in the store", c.Name)
		}
		maps.Copy(generated, rec.Labels)
		h := v1.History{Created: &created, CreatedBy: "strata build " + c.Name, EmptyLayer: rec.Empty}
		img.History = append(img.History, h)
		if rec.Empty {
			continue
		}
		if _, ok := rec.Blob(t, !s.noVerity); !ok {
			// An ancestor committed by an earlier build, for images of
			// other types: encode its layer folder now.
			var encoded []layertype.Type
			rec, encoded, err = s.ensureTypes(ctx, c, rec, []layertype.Type{t})
			if err != nil {
				return img, baseCfg, nil, err
			}
			if len(encoded) > 0 {
				s.notef("%s: encoded as %s (for %s)\n", c.Name, joinTypes(encoded), chain[len(chain)-1].Name)
			}
		}
		blob, ok := rec.Blob(t, !s.noVerity)
		if !ok {
			return img, baseCfg, nil, fmt.Errorf("layer of %q was not built as %s", c.Name, t)
		}
		img.Layers = append(img.Layers, blob.Descriptor)
		img.DiffIDs = append(img.DiffIDs, digest.Digest(blob.DiffID))
	}
	return img, baseCfg, generated, nil
}
