package runtime

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/runtime/host"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
)

// Records is what deciding an image needs of the store: its cache
// records, found by key. *storage.Store keeps this contract; a test may
// give the decider a fake that keeps it too.
type Records interface {
	// Lookup returns the record of key, or nil when the store has none.
	// A record the store cannot vouch for (its layer folder or a blob is
	// gone, or the file is not one strata wrote, or it is another key's)
	// is never returned: rec is nil and dropped says why, for the build
	// log. err is a failure to read, never a miss: the build stops on it
	// rather than rebuild over a store it cannot read.
	Lookup(key digest.Digest) (rec *storage.Record, dropped string, err error)
	// Last returns the record last committed for an image of this name,
	// whatever its key, or nil: its key inputs, compared with the
	// definition's, say why the image is built again. It may be dropped by
	// Lookup; Last does not check its blobs, since it is only read.
	Last(image string) *storage.Record
}

var _ Records = (*storage.Store)(nil)

// records is st as Records: nil (no interface value holding a nil
// pointer) when st is nil, so that the decider sees no store.
func records(st *storage.Store) Records {
	if st == nil {
		return nil
	}
	return st
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
