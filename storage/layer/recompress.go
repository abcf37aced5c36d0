package layer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/layertype"
)

// Recompress writes the tar layer blob at blobPath, of the given media type
// (empty: detected from its magic bytes), as a tar layer of type t into the
// file outPath, which it creates. The tar stream is copied byte for byte, so
// the layer keeps its diff ID and only the compression changes: a base in
// one compression can sit under layers of another without the image mixing
// them. The compressor is the one Write uses at opts.Level, so the same blob
// gives the same digest on every machine. On error outPath is removed.
func Recompress(ctx context.Context, blobPath, mediaType string, t layertype.Type, outPath string, opts WriteOptions) (res Result, err error) {
	switch t {
	case layertype.TarGzip, layertype.TarZstd, layertype.TarUncompressed:
	default:
		return Result{}, fmt.Errorf("recompress %s: %q is not a tar layer type", blobPath, t)
	}
	from, err := TypeOfMediaType(mediaType)
	if err != nil && mediaType != "" {
		return Result{}, fmt.Errorf("recompress %s: %w", blobPath, err)
	}
	if from.FS() {
		return Result{}, fmt.Errorf("recompress %s: a %s layer is not a tar stream", blobPath, from)
	}
	r, err := openTar(ctx, blobPath, from)
	if err != nil {
		return Result{}, err
	}
	defer r.Close()

	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return Result{}, fmt.Errorf("create layer blob: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close layer blob %s: %w", outPath, cerr)
		}
		if err != nil {
			_ = os.Remove(outPath)
		}
	}()
	sink := newAsyncSink(out)
	comp, err := newCompressor(t, sink.writer(ctx), opts.Level)
	if err != nil {
		sink.Close()
		return Result{}, fmt.Errorf("layer %s: %w", outPath, err)
	}
	diffHash := sha256.New()
	_, cerr := io.Copy(comp, io.TeeReader(r, diffHash))
	if err := comp.Close(); cerr == nil {
		cerr = err
	}
	if err := sink.Close(); cerr == nil {
		cerr = err
	}
	if cerr != nil {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("recompress %s as %s: %w", blobPath, t, cerr)
	}
	return Result{
		Digest:    digest.NewDigest(digest.SHA256, sink.h),
		DiffID:    digest.NewDigest(digest.SHA256, diffHash),
		Size:      sink.size,
		MediaType: MediaType(t),
	}, nil
}
