package runtime

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/sbom"
	"github.com/strata-build/strata/internal/timings"
	"github.com/strata-build/strata/storage"
)

// sbomScan returns, once per call of tag, the packages of n's root file
// system, read through its layer folders (storage.MergedFS): every layer
// type of an image has the same files, so one scan serves all its
// manifests.
func (b *builder) sbomScan(ctx context.Context, n *dsl.Node) func() ([]sbom.Package, error) {
	return sync.OnceValues(func() ([]sbom.Package, error) {
		defer timings.Phase("sbom: scan " + n.Name)()
		dirs, err := b.built(ctx, n)
		if err != nil {
			return nil, err
		}
		slices.Reverse(dirs)
		return sbom.Scan(ctx, storage.MergedFS(dirs))
	})
}

// writeSBOM stores the SBOM of the image manifest desc of n as its
// referrer in the output layout. It scans only when the layout has no
// SBOM of desc yet: a cached build of an unchanged image, whose manifest
// digest is the same, costs a look at index.json. The document and its
// artifact manifest hold no time but the epoch, so the same image gives
// the same SBOM digest.
func (b *builder) writeSBOM(ctx context.Context, n *dsl.Node, desc v1.Descriptor, scan func() ([]sbom.Package, error)) error {
	refs, err := b.opts.Layout.Referrers(ctx, desc.Digest, sbom.MediaType)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		return nil
	}
	pkgs, err := scan()
	if err != nil {
		return fmt.Errorf("scan for the SBOM: %w", err)
	}
	created := time.Unix(b.epoch, 0).UTC()
	doc, err := sbom.Document(n.Name, desc.Digest, created, pkgs)
	if err != nil {
		return err
	}
	art, err := b.store.PutArtifact(ctx, sbom.MediaType, doc, desc, map[string]string{v1.AnnotationCreated: created.Format(time.RFC3339)})
	if err != nil {
		return fmt.Errorf("SBOM: %w", err)
	}
	if err := b.opts.Layout.AddReferrer(ctx, b.opts.Store, art, desc.Digest); err != nil {
		return fmt.Errorf("SBOM: %w", err)
	}
	return nil
}
