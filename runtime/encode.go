package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// Layer types are not part of the cache key: a committed layer folder (the
// overlay upper dir of the image's build) holds everything any encoding
// needs, so an image built as tar and now wanted as squashfs, or an ancestor
// of a squashfs image, is encoded from that folder without running a step.

// ensureTypes returns the record of n with a blob of every type in types,
// encoding the missing ones from the committed layer folder. encoded lists
// what it had to encode, for the build log. One folder is encoded by one
// image at a time: two images built in parallel on one base may both need
// its squashfs blob, and the second then finds it made by the first.
func (s *stack) ensureTypes(ctx context.Context, n *dsl.Node, rec *storage.Record, types []layertype.Type) (_ *storage.Record, encoded []layertype.Type, err error) {
	if rec.Empty {
		return rec, nil, nil
	}
	dir := s.store.LayerDir(rec.LayerDir)
	for {
		if len(missingTypes(rec, types, !s.noVerity)) == 0 {
			return rec, encoded, nil
		}
		r, ran, err := s.encodes.Do(dir, func() (encodeResult, error) {
			rec, missing, err := s.encodeMissing(ctx, n, dir, types)
			return encodeResult{rec: rec, encoded: missing}, err
		})
		if ran {
			return r.rec, r.encoded, err
		}
		// This image waited for another one's encoding of the folder
		// (whose error, if any, names that image): see what it left
		// missing for this one.
		if rec, err = s.lookupAgain(n); err != nil {
			return nil, nil, err
		}
	}
}

// encodeResult is the outcome of one encoding of a layer folder.
type encodeResult struct {
	rec     *storage.Record
	encoded []layertype.Type
}

// encodeMissing encodes the types n's current record lacks from its layer
// folder dir and adds them to the record.
func (s *stack) encodeMissing(ctx context.Context, n *dsl.Node, dir string, types []layertype.Type) (*storage.Record, []layertype.Type, error) {
	// Another image may have encoded it since the caller looked.
	cur, err := s.lookupAgain(n)
	if err != nil {
		return nil, nil, err
	}
	missing := missingTypes(cur, types, !s.noVerity)
	if len(missing) == 0 {
		return cur, nil, nil
	}
	ws, err := s.store.NewWorkspace(n.Name + "-encode")
	if err != nil {
		return nil, nil, err
	}
	defer s.discard(ctx, ws)
	blobs, err := s.encodeLayerDir(ctx, n.Name, dir, ws, missing)
	if err != nil {
		return nil, nil, fmt.Errorf("image %q: %w", n.Name, err) // the error names the layer type
	}
	for _, blob := range blobs {
		if cur, err = s.store.AddBlob(cur.Key, blob); err != nil {
			return nil, nil, fmt.Errorf("image %q: %w", n.Name, err)
		}
	}
	return cur, missing, nil
}

// lookupAgain reads n's record while it is being encoded, when it must
// still be there.
func (s *stack) lookupAgain(n *dsl.Node) (*storage.Record, error) {
	cur, dropped, err := s.store.Lookup(n.Key)
	if err != nil {
		return nil, fmt.Errorf("image %q: cache: %w", n.Name, err)
	}
	if cur == nil {
		if dropped == "" {
			dropped = "its record is gone"
		}
		return nil, fmt.Errorf("image %q: its cache entry was dropped while encoding it: %s", n.Name, dropped)
	}
	return cur, nil
}

// encodeLayerDir writes the layer folder dir as each of types into ws.Out.
// As root it encodes directly. A rootless build's layer folder holds files
// owned by subordinate ids and overlay xattrs in the user namespace, which
// only a process in the build's user namespace reads as the build wrote
// them, so there the commit finisher does the work in a sandbox without
// steps, reading the layer folder by its host path. The folder is not the
// sandbox's upper dir: mounting an overlay on it would add overlay xattrs
// (uuid, impure, origin) to it and change its later encodings.
func (s *stack) encodeLayerDir(ctx context.Context, name, dir string, ws *storage.Workspace, types []layertype.Type) ([]storage.CommitBlob, error) {
	if s.uids == nil {
		return writeTypes(ctx, dir, ws.Out, types, layer.WriteOptions{SourceDateEpoch: time.Unix(s.epoch, 0), NoVerity: s.noVerity, SquashfsWriter: s.squashfsWriter})
	}
	spec := s.spec(name, nil, ws)
	var err error
	spec.Finish, err = finishSpec(commitArg{Types: types, Out: ws.Out, Epoch: s.epoch, UserXattr: true, Dir: dir, NoVerity: s.noVerity, SquashfsWriter: s.squashfsWriter})
	if err != nil {
		return nil, err
	}
	raw, err := sandbox.Run(ctx, spec)
	if err != nil {
		return nil, err
	}
	out, err := parseCommit(raw)
	if err != nil {
		return nil, err
	}
	if out.Empty {
		return nil, errEmptyFolder(dir)
	}
	return out.Blobs, nil
}

// missingTypes are the types of types rec has no blob of, counting a
// squashfs or erofs blob only when it has a dm-verity tree as withVerity
// says.
func missingTypes(rec *storage.Record, types []layertype.Type, withVerity bool) []layertype.Type {
	var out []layertype.Type
	for _, t := range types {
		if _, ok := rec.Blob(t, withVerity); !ok {
			out = append(out, t)
		}
	}
	return out
}

func joinTypes(types []layertype.Type) string {
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// cachedMessage is the build log's word for an image found in the cache.
func cachedMessage(encoded []layertype.Type) string {
	if len(encoded) == 0 {
		return "cached"
	}
	return "cached (encoded as " + joinTypes(encoded) + ")"
}

// builtMessage is the build log's last word on an image that ran its
// steps: "built" the first time, otherwise why it had to run again.
func builtMessage(reason string) string {
	if reason == "" || reason == "not built before" {
		return "built"
	}
	return "rebuilt: " + reason
}
