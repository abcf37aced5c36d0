package runtime

import (
	"context"
	"slices"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/storage"
)

// LayerDirs returns the layer folders the rootfs of the built image n is
// an overlay of, bottom first: its external base's unpacked layers, then
// the committed layers of its ancestors and its own. It reads the store
// only; an image (or ancestor) whose definition changed since it was built
// is reported as not built.
func LayerDirs(ctx context.Context, st *storage.Store, n *dsl.Node) ([]string, error) {
	s, err := newStack(st)
	if err != nil {
		return nil, err
	}
	defer s.bases.cache.wait() // a base load left by Ctrl-C, before the store closes
	dirs, err := s.built(ctx, n)
	if err != nil {
		return nil, err
	}
	slices.Reverse(dirs)
	return dirs, nil
}
