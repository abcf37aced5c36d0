package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage"
)

// fakeRecords keeps the Records contract in memory.
type fakeRecords struct {
	recs    map[digest.Digest]*storage.Record
	dropped map[digest.Digest]string
	last    map[string]*storage.Record
	err     error
}

func (f *fakeRecords) Lookup(key digest.Digest) (*storage.Record, string, error) {
	if f.err != nil {
		return nil, "", f.err
	}
	return f.recs[key], f.dropped[key], nil
}

func (f *fakeRecords) Last(image string) *storage.Record { return f.last[image] }

func TestDecide(t *testing.T) {
	base := dsl.New("base").From(dsl.Scratch()).Run("true")
	app := dsl.New("app").From(base).Run("true").LayerTypes(dsl.Squashfs)
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{base, app}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := g.Select()
	if err != nil {
		t.Fatal(err)
	}
	b, a := g.Node("base"), g.Node("app")
	gz := storage.LayerBlob{Type: layertype.TarGzip}
	sq := storage.LayerBlob{Type: layertype.Squashfs, Descriptor: v1.Descriptor{Annotations: map[string]string{verity.RootHashAnnotation: "00"}}}
	sqPlain := storage.LayerBlob{Type: layertype.Squashfs}
	noVerity := false
	decide := func(st Records, noCache bool, n *dsl.Node) decision {
		t.Helper()
		d, err := decider{records: st, noCache: noCache, noVerity: noVerity, needs: layerNeeds(nodes)}.decide(n)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	if d := decide(nil, false, b); d.action != RunSteps || d.reason != "not built before" {
		t.Errorf("no store: %+v", d)
	}
	full := &fakeRecords{recs: map[digest.Digest]*storage.Record{
		b.Key: {Key: b.Key, Layers: []storage.LayerBlob{gz, sq}},
		a.Key: {Key: a.Key, Layers: []storage.LayerBlob{sq}},
	}}
	if d := decide(full, false, b); d.action != Reuse || d.rec != full.recs[b.Key] {
		t.Errorf("cached in every type: %+v", d)
	}
	if d := decide(full, true, b); d.action != RunSteps || d.reason != "--no-cache" {
		t.Errorf("--no-cache: %+v", d)
	}
	// base is tagged as tar+gzip and is the base of a squashfs image: its
	// record must hold both.
	gzOnly := &fakeRecords{recs: map[digest.Digest]*storage.Record{b.Key: {Key: b.Key, Layers: []storage.LayerBlob{gz}}}}
	if d := decide(gzOnly, false, b); d.action != Encode || len(d.missing) != 1 || d.missing[0] != layertype.Squashfs {
		t.Errorf("missing a type: %+v", d)
	}
	// A squashfs blob without a verity tree is not the one a build with
	// verity needs, and the reverse.
	plain := &fakeRecords{recs: map[digest.Digest]*storage.Record{b.Key: {Key: b.Key, Layers: []storage.LayerBlob{gz, sqPlain}}}}
	if d := decide(plain, false, b); d.action != Encode || len(d.missing) != 1 || d.missing[0] != layertype.Squashfs {
		t.Errorf("squashfs without verity, verity wanted: %+v", d)
	}
	noVerity = true
	if d := decide(plain, false, b); d.action != Reuse {
		t.Errorf("squashfs without verity, --no-verity: %+v", d)
	}
	if d := decide(full, false, b); d.action != Encode {
		t.Errorf("squashfs with verity, --no-verity: %+v", d)
	}
	noVerity = false
	// Steps that changed nothing commit no layer: nothing to encode.
	empty := &fakeRecords{recs: map[digest.Digest]*storage.Record{b.Key: {Key: b.Key, Empty: true}}}
	if d := decide(empty, false, b); d.action != Reuse {
		t.Errorf("empty layer: %+v", d)
	}
	dropped := &fakeRecords{dropped: map[digest.Digest]string{b.Key: "its layer folder is gone"}}
	if d := decide(dropped, false, b); d.action != RunSteps || d.reason != "cache entry dropped: its layer folder is gone" {
		t.Errorf("dropped: %+v", d)
	}
	changed := &fakeRecords{last: map[string]*storage.Record{"app": {KeyInputs: []byte(`{}`)}}}
	if d := decide(changed, false, a); d.action != RunSteps || d.reason == "" || d.reason == "not built before" {
		t.Errorf("changed since the last build: %+v", d)
	}
	broken := &fakeRecords{err: errors.New("permission denied")}
	if _, err := (decider{records: broken}).decide(b); err == nil || !strings.Contains(err.Error(), `image "base"`) {
		t.Errorf("unreadable store: %v", err)
	}
}
