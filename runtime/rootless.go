package runtime

import (
	"context"

	"github.com/strata-build/strata/runtime/host"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

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
	uids, gids, err := host.IDMapsIfRootless()
	if err != nil || uids == nil {
		return nil
	}
	return func(path string) error {
		return sandbox.RemoveAll(context.WithoutCancel(ctx), path, uids, gids)
	}
}
