package runtime

import (
	"context"
	"os"

	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// idMapsIfRootless returns the id maps of a rootless build, or nils when
// strata runs as root and needs no user namespace.
func idMapsIfRootless() (uids, gids []sandbox.IDMap, err error) {
	if os.Geteuid() == 0 {
		return nil, nil, nil
	}
	return IDMaps()
}

// unpackOptions: a rootless build's overlays are mounted with userxattr,
// so opaque markers of unpacked layers use the user.overlay namespace.
func unpackOptions(rootless bool) layer.UnpackOptions {
	return layer.UnpackOptions{UserXattr: rootless, Rootless: rootless}
}

// OpenStore is how strata opens a store: storage.Open with the removal a
// rootless store needs (see removeAllFunc), which storage, running no
// process, cannot make itself.
func OpenStore(ctx context.Context, root string, o storage.OpenOptions) (*storage.Store, error) {
	o.RemoveAll = removeAllFunc(ctx)
	return storage.Open(ctx, root, o)
}

// removeAllFunc returns what storage.OpenOptions.RemoveAll should be: nil as
// root, and a removal inside the build's user namespace otherwise, which
// alone may delete files a rootless step chowned to other ids.
func removeAllFunc(ctx context.Context) func(string) error {
	uids, gids, err := idMapsIfRootless()
	if err != nil || uids == nil {
		return nil
	}
	return func(path string) error {
		return sandbox.RemoveAll(context.WithoutCancel(ctx), path, uids, gids)
	}
}
