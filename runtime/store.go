package runtime

import (
	"context"
	"os"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/runtime/host"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
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

// Store is what the runtime relies on from the store beyond Records,
// method by method: the layer folders images stand on, the workspaces
// their steps write, and committing what those steps made. *storage.Store
// keeps it. Beyond it, the runtime hands the concrete store to storage's
// own packages (fetch, regcache, the layout), which are parts of the
// store, imports layouts through it (bases, strata run), and keeps its
// own folders under Store.Root (logs, cache mounts, downloads' links).
//
// The methods may be called by the images of one build at once (the
// store's lock keeps other processes out), except AddBlob for one key:
// the stack encodes one layer folder at a time.
type Store interface {
	Records
	// LayerDir returns the folder of the committed or unpacked layer id
	// (Record.LayerDir). It is a lower dir of every image built on it and
	// must never be written to.
	LayerDir(id string) string
	// UnpackBase unpacks the layers of a base into layer folders, once
	// per layer for the store's lifetime, each checked against the diff
	// ID the base's config claims, and returns them bottom first. A failed
	// unpack leaves nothing behind.
	UnpackBase(ctx context.Context, img *storage.BaseImage, opts layer.UnpackOptions) ([]string, error)
	// UnpackAll is UnpackBase for layers no config vouches for (those of
	// a tagged image run by strata run).
	UnpackAll(ctx context.Context, descs []v1.Descriptor, opts layer.UnpackOptions) ([]string, error)
	// CommittedLayers maps each layer blob the records hold to the
	// committed folder it encodes, whose owners are those the build's
	// steps gave (which a rootless unpack of the blob cannot give).
	CommittedLayers() (map[digest.Digest]string, error)
	// VerifyDiffIDs checks the diff IDs the config of a base claims
	// against its layers, reading a blob only when no unpack measured it.
	VerifyDiffIDs(ctx context.Context, img *storage.BaseImage) error
	// NewWorkspace returns fresh folders (upper, work, rootfs, out) for
	// one overlay of the image name; they are removed by the next open of
	// the store if the caller does not discard them.
	NewWorkspace(name string) (*storage.Workspace, error)
	// NewSession is NewWorkspace for a container that may outlive the
	// store's lock (strata run): its folders are held by a lock of their
	// own until discarded.
	NewSession(name string) (*storage.Workspace, error)
	// Commit moves a workspace's upper dir and blobs into the store and
	// then writes rec: an interrupted commit leaves unreferenced files,
	// never a record naming something half-written.
	Commit(ws *storage.Workspace, rec storage.Record, blobs []storage.CommitBlob) (*storage.Record, error)
	// AddBlob adds another encoding of a committed layer to the record
	// of key and returns the record as rewritten; a reader sees it with
	// or without the new blob, never naming a blob that is not there.
	// Two calls for one key at once may lose one of the blobs.
	AddBlob(key digest.Digest, blob storage.CommitBlob) (*storage.Record, error)
	// BlobLayout is the OCI image layout folder holding the store's
	// blobs, which a Backend reads images from (Job.Blobs).
	BlobLayout() string
	// PutImage writes an image's config and manifest as deterministic
	// JSON and returns the manifest's descriptor.
	PutImage(ctx context.Context, spec storage.ImageSpec) (v1.Descriptor, error)
	// PutArtifact writes data and an OCI 1.1 artifact manifest whose
	// subject is an image manifest (its SBOM), as deterministic JSON, and
	// returns the artifact manifest's descriptor.
	PutArtifact(ctx context.Context, artifactType string, data []byte, subject v1.Descriptor, annotations map[string]string) (v1.Descriptor, error)
}

var _ Store = (*storage.Store)(nil)

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
	if os.Geteuid() == 0 {
		return nil
	}
	// The id maps are read when a removal needs them, which is seldom:
	// opening the store should not read /etc/subuid as well as the build.
	return func(path string) error {
		uids, gids, err := host.IDMaps()
		if err != nil {
			return err
		}
		return sandbox.RemoveAll(context.WithoutCancel(ctx), path, uids, gids)
	}
}
