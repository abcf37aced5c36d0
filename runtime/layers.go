package runtime

import (
	"context"
	"fmt"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/storage"
)

// LayerDirs returns the layer folders the rootfs of the built image n is
// an overlay of, bottom first: its external base's unpacked layers, then
// the committed layers of its ancestors and its own. It reads the store
// only; an image (or ancestor) whose definition changed since it was built
// is reported as not built.
func LayerDirs(ctx context.Context, st *storage.Store, n *dsl.Node) ([]string, error) {
	b := &builder{opts: Options{Store: st}}
	var err error
	if b.uids, b.gids, err = idMapsIfRootless(); err != nil {
		return nil, err
	}
	for _, c := range n.Chain() {
		rec, _, err := st.Lookup(c.Key)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, fmt.Errorf("image %q is not built as currently defined: run strata build %s", c.Name, n.Name)
		}
	}
	top, err := b.lowers(ctx, n)
	if err != nil {
		return nil, err
	}
	rec, _, err := st.Lookup(n.Key)
	if err != nil {
		return nil, err
	}
	if !rec.Empty {
		top = append([]string{st.LayerDir(rec.LayerDir)}, top...)
	}
	dirs := make([]string, len(top))
	for i, d := range top {
		dirs[len(top)-1-i] = d
	}
	return dirs, nil
}
