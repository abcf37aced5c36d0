package layer

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// DiffIDOf measures the diff ID of the layer blob at blobPath, of the
// given media type (empty: detected from its magic bytes): the sha256 of
// its uncompressed tar stream, or of the blob itself for squashfs. Unpack
// checks a claimed diff ID in the same pass that extracts; this is for a
// claim about a layer that is not being unpacked.
func DiffIDOf(ctx context.Context, blobPath, mediaType string) (digest.Digest, error) {
	t, err := TypeOfMediaType(mediaType)
	if err != nil && mediaType != "" {
		return "", fmt.Errorf("layer %s: %w", blobPath, err)
	}
	r, err := openTar(ctx, blobPath, t)
	if err != nil {
		return "", err
	}
	defer r.Close()
	dg := digest.SHA256.Digester()
	if _, err := io.Copy(dg.Hash(), r); err != nil {
		return "", fmt.Errorf("read layer blob %s: %w", blobPath, err)
	}
	return dg.Digest(), nil
}
