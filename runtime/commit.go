package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// commitFinisher is the name under which the commit runs inside the
// sandbox: a rootless build can only read what its steps wrote from inside
// the user namespace that owns those files.
const commitFinisher = "strata.commit"

func init() { sandbox.RegisterFinisher(commitFinisher, commitUpper) }

type commitArg struct {
	// Types are decoded by the child: an unknown one fails the hand-over.
	Types     []layertype.Type `json:"types"`
	Out       string           `json:"out"`
	Epoch     int64            `json:"epoch"`
	UserXattr bool             `json:"userXattr"`
	// Mksquashfs is the host's mksquashfs, resolved by the parent: the
	// sandbox child runs without a PATH.
	Mksquashfs string `json:"mksquashfs,omitempty"`
	// MkfsErofs is the host's mkfs.erofs, as Mksquashfs.
	MkfsErofs      string `json:"mkfsErofs,omitempty"`
	NoVerity       bool   `json:"noVerity,omitempty"`
	SquashfsWriter string `json:"squashfsWriter,omitempty"`
	// Dir, when set, is encoded instead of the sandbox's upper dir: a
	// committed layer folder that must be read from inside the build's
	// user namespace but never be an overlay's upper dir again, since
	// mounting one writes overlay xattrs into it.
	Dir string `json:"dir,omitempty"`
}

type commitResult struct {
	Empty bool                 `json:"empty"`
	Blobs []storage.CommitBlob `json:"blobs"`
}

func finishSpec(arg commitArg) (*sandbox.FinishSpec, error) {
	if arg.Mksquashfs == "" && slices.Contains(arg.Types, layertype.Squashfs) && arg.SquashfsWriter == layer.SquashfsMksquashfs {
		// A missing mksquashfs is reported by layer.Write, with the fix.
		arg.Mksquashfs, _ = exec.LookPath("mksquashfs")
	}
	if arg.MkfsErofs == "" && slices.Contains(arg.Types, layertype.Erofs) {
		arg.MkfsErofs, _ = exec.LookPath("mkfs.erofs")
	}
	raw, err := json.Marshal(arg)
	if err != nil {
		return nil, err
	}
	return &sandbox.FinishSpec{Name: commitFinisher, Arg: raw}, nil
}

func parseCommit(raw json.RawMessage) (commitResult, error) {
	var r commitResult
	err := json.Unmarshal(raw, &r)
	return r, err
}

// commitUpper runs inside the sandbox. After a build's steps (no Types)
// it only says whether the upper dir holds any change; for a rootless
// encode of a committed layer folder (Dir and Types set) it encodes that
// folder, which only the build's user namespace reads as the steps wrote
// it, once per layer type into the workspace's out folder.
func commitUpper(ctx context.Context, upper string, raw json.RawMessage) (json.RawMessage, error) {
	var arg commitArg
	if err := json.Unmarshal(raw, &arg); err != nil {
		return nil, err
	}
	if arg.Dir != "" {
		upper = arg.Dir
	}
	var res commitResult
	var err error
	if res.Empty, err = layer.Unchanged(upper); err != nil {
		return nil, err
	}
	if res.Empty || len(arg.Types) == 0 {
		return json.Marshal(res)
	}
	layer.UseEncoderGC() // this process encodes and then ends
	res.Blobs, err = writeTypes(ctx, upper, arg.Out, arg.Types, layer.WriteOptions{
		SourceDateEpoch: time.Unix(arg.Epoch, 0),
		UserXattr:       arg.UserXattr,
		Mksquashfs:      arg.Mksquashfs,
		MkfsErofs:       arg.MkfsErofs,
		NoVerity:        arg.NoVerity,
		SquashfsWriter:  arg.SquashfsWriter,
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// writeTypes encodes the layer folder dir once per layer type into the
// folder out.
func writeTypes(ctx context.Context, dir, out string, types []layertype.Type, opts layer.WriteOptions) ([]storage.CommitBlob, error) {
	var blobs []storage.CommitBlob
	for _, t := range types {
		path := filepath.Join(out, string(t)+".blob")
		r, err := layer.Write(ctx, dir, t, path, opts)
		if err != nil {
			return nil, fmt.Errorf("encode layer as %s: %w", t, err)
		}
		if r.Empty {
			return nil, errEmptyFolder(dir)
		}
		blobs = append(blobs, storage.CommitBlob{Path: path, LayerBlob: storage.LayerBlob{
			Type:       t,
			Descriptor: v1.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size, Annotations: r.Annotations()},
			DiffID:     digest.Digest(r.DiffID).String(),
		}})
	}
	return blobs, nil
}

// errEmptyFolder is the error of a committed layer folder found empty,
// which its record says it is not.
func errEmptyFolder(dir string) error {
	return fmt.Errorf("layer folder %s is empty, but its record says it is not", dir)
}
