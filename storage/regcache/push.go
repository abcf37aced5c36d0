package regcache

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/publish"
)

// Push uploads rec's layer blobs from st and its record, unless the
// registry already has a record for rec.Key: the first store to upload a
// key wins, so a record never changes under a reader. pushed says whether
// anything was written; sent, when set, counts the layer bytes uploaded.
func (c *Cache) Push(ctx context.Context, st *storage.Store, rec *storage.Record, sent *atomic.Int64) (pushed bool, err error) {
	tag, err := Tag(rec.Key)
	if err != nil {
		return false, err
	}
	ref := c.Repo.Tag(tag)
	ropts, err := c.remoteOptions(ctx)
	if err != nil {
		return false, err
	}
	if _, err := remote.Head(ref, ropts...); err == nil {
		return false, nil
	} else if !notFound(err) {
		return false, fmt.Errorf("cache %s: %w", c, err)
	}
	config, manifest, err := encode(rec)
	if err != nil {
		return false, fmt.Errorf("cache record of %s: %w", rec.Image, err)
	}
	img, err := publish.Image(st, manifest, map[digest.Digest][]byte{digest.FromBytes(config): config}, sent)
	if err != nil {
		return false, fmt.Errorf("cache record of %s: %w", rec.Image, err)
	}
	// Retries are as short as for reads; a failed upload costs the next
	// build a rebuild, never this one its result.
	err = publish.Push(ctx, img, ref, publish.Options{Registry: c.opts, Remote: []remote.Option{shortRetry}})
	if err != nil {
		return false, fmt.Errorf("cache %s: %w", c, err)
	}
	return true, nil
}
