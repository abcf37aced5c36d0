package publish

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushReferrer pushes the artifact manifest desc of the OCI layout at
// layoutPath (an image's SBOM, whose subject the caller pushed to repo
// first) to repo by digest: an artifact has no tag of its own. A registry
// with the referrers API lists it among its subject's referrers; for one
// without, go-containerregistry also adds it to the subject's fallback
// tag sha256-HEX, the index of referrers OCI distribution 1.1 defines,
// which remote.Referrers, oras and regctl read. It is read from the
// layout, not the store: the layout is what keeps it.
func PushReferrer(ctx context.Context, layoutPath string, desc ispec.Descriptor, repo name.Repository, opts Options) error {
	h, err := ggcr.NewHash(desc.Digest.String())
	if err != nil {
		return err
	}
	img, err := layout.Path(layoutPath).Image(h)
	if err != nil {
		return fmt.Errorf("%s %s: %w", desc.ArtifactType, desc.Digest, err)
	}
	return Push(ctx, img, repo.Digest(desc.Digest.String()), opts)
}
