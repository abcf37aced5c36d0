package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
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
	if arg.Mksquashfs == "" && slices.Contains(arg.Types, layertype.Squashfs) {
		// A missing mksquashfs is reported by layer.Write, with the fix.
		arg.Mksquashfs, _ = exec.LookPath("mksquashfs")
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

// commitUpper runs inside the sandbox: it says whether the upper dir holds
// any change, and encodes it once per layer type into the workspace's out
// folder.
func commitUpper(ctx context.Context, upper string, raw json.RawMessage) (json.RawMessage, error) {
	var arg commitArg
	if err := json.Unmarshal(raw, &arg); err != nil {
		return nil, err
	}
	if arg.Dir != "" {
		upper = arg.Dir
	}
	// This process only encodes from here on; a GOGC the user set wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(layer.EncoderGCPercent)
	}
	var res commitResult
	var err error
	if res.Empty, err = layer.Unchanged(upper); err != nil {
		return nil, err
	}
	if res.Empty {
		return json.Marshal(res)
	}
	for _, t := range arg.Types {
		path := filepath.Join(arg.Out, string(t)+".blob")
		r, err := layer.Write(ctx, upper, t, path, layer.WriteOptions{
			SourceDateEpoch: time.Unix(arg.Epoch, 0),
			UserXattr:       arg.UserXattr,
			Mksquashfs:      arg.Mksquashfs,
		})
		if err != nil {
			return nil, fmt.Errorf("encode layer as %s: %w", t, err)
		}
		res.Blobs = append(res.Blobs, storage.CommitBlob{Path: path, LayerBlob: storage.LayerBlob{
			Type:       t,
			Descriptor: v1.Descriptor{MediaType: r.MediaType, Digest: r.Digest, Size: r.Size},
			DiffID:     digest.Digest(r.DiffID).String(),
		}})
	}
	return json.Marshal(res)
}
