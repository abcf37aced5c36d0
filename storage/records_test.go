package storage

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestLookupDropsRecordsStrataDidNotWrite: a file in a record's place that
// parses but is not a record strata wrote is dropped with a reason, as a
// record whose blob is gone is, so the image is rebuilt.
func TestLookupDropsRecordsStrataDidNotWrite(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := digest.FromString("key")
	d := digest.FromString("layer")
	good := Record{Key: key, Image: "img", LayerDir: "k-" + keyFile(key),
		Layers: []LayerBlob{{Type: "tar+gzip", Descriptor: v1.Descriptor{Digest: d, Size: 5}, DiffID: d.String()}}}
	os.MkdirAll(s.LayerDir(good.LayerDir), 0o755)
	os.MkdirAll(filepath.Dir(s.BlobPath(d.String())), 0o755)
	os.WriteFile(s.BlobPath(d.String()), []byte("layer"), 0o644)
	with := func(change func(*Record)) string {
		r := good
		r.Layers = append([]LayerBlob(nil), good.Layers...)
		change(&r)
		b, _ := json.Marshal(r)
		return string(b)
	}
	for _, tc := range []struct{ name, file, why string }{
		{"empty", `{}`, `key "" is not a digest`},
		{"stacker's", `{"version":1,"cache":"lolnope"}`, `key "" is not a digest`},
		{"not JSON", `{"key":`, "not JSON of a record"},
		{"another key's", with(func(r *Record) { r.Key = digest.FromString("other") }), "it is the record of sha256:"},
		{"no image", with(func(r *Record) { r.Image = "" }), "names no image"},
		{"layer folder outside", with(func(r *Record) { r.LayerDir = "../../etc" }), `layer folder "../../etc" is not a name under layers/`},
		{"no layer folder", with(func(r *Record) { r.LayerDir = "" }), `layer folder "" is not a name`},
		{"blob without a type", strings.Replace(with(func(*Record) {}), `"type":"tar+gzip",`, "", 1), "has no type"},
		{"blob digest", with(func(r *Record) { r.Layers[0].Descriptor.Digest = "sha256:zz" }), "is not a digest"},
		{"diff id", with(func(r *Record) { r.Layers[0].DiffID = "" }), `diff id "" is not a digest`},
		{"two blobs of a type", with(func(r *Record) { r.Layers = append(r.Layers, r.Layers[0]) }), "two tar+gzip layer blobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(s.recordPath(key), []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			rec, dropped, err := s.Lookup(key)
			if err != nil || rec != nil || !strings.Contains(dropped, "its record is not one strata wrote") || !strings.Contains(dropped, tc.why) {
				t.Errorf("Lookup = %v, %q, %v; want dropped because %q", rec, dropped, err, tc.why)
			}
			if _, err := os.Stat(s.recordPath(key)); !os.IsNotExist(err) {
				t.Error("the dropped record is still on disk")
			}
		})
	}
	os.WriteFile(s.recordPath(key), []byte(with(func(*Record) {})), 0o644)
	if rec, dropped, err := s.Lookup(key); err != nil || rec == nil || dropped != "" {
		t.Errorf("a record strata wrote: %v, %q, %v", rec, dropped, err)
	}
	// A newer strata sharing the store may record a layer type this one
	// does not know: the record stays, without that blob, which this
	// strata cannot use (it encodes its own types from the layer folder).
	os.WriteFile(s.recordPath(key), []byte(with(func(r *Record) {
		r.Layers = append(r.Layers, LayerBlob{Type: "erofs", Descriptor: r.Layers[0].Descriptor, DiffID: r.Layers[0].DiffID})
	})), 0o644)
	if rec, dropped, err := s.Lookup(key); err != nil || rec == nil || dropped != "" || len(rec.Layers) != 1 || rec.Layers[0].Type != "tar+gzip" {
		t.Errorf("a record with a blob of an unknown type: %+v, %q, %v; want it kept without that blob", rec, dropped, err)
	}
	// The last record only explains a rebuild: one that is not strata's
	// counts as none.
	os.MkdirAll(filepath.Dir(s.lastPath("img")), 0o755)
	os.WriteFile(s.lastPath("img"), []byte(`{"version":1,"cache":"lolnope"}`), 0o644)
	if rec := s.Last("img"); rec != nil {
		t.Errorf("Last of a foreign file = %+v", rec)
	}
}

// A record written when a layer type was a plain string reads back typed
// and is written again byte for byte: existing stores keep their records.
func TestRecordJSONKeepsLayerTypeNames(t *testing.T) {
	d := digest.FromString("layer")
	var old strings.Builder
	old.WriteString(`{
  "key": "` + digest.FromString("key").String() + `",
  "image": "img",
  "layerDir": "k-1",
  "layers": [`)
	for i, typ := range []string{"tar+gzip", "tar+zstd", "squashfs", "tar+uncompressed"} {
		if i > 0 {
			old.WriteString(",")
		}
		old.WriteString(`
    {
      "type": "` + typ + `",
      "descriptor": {
        "mediaType": "m",
        "digest": "` + d.String() + `",
        "size": 5
      },
      "diffID": "` + d.String() + `"
    }`)
	}
	old.WriteString("\n  ]\n}\n")
	path := filepath.Join(t.TempDir(), "rec.json")
	if err := os.WriteFile(path, []byte(old.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, garbage, err := readRecord(path)
	if err != nil || garbage != "" || rec.check() != "" {
		t.Fatalf("readRecord = %v, %q, %v", rec, garbage, err)
	}
	if err := writeJSON(path, rec); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != old.String() {
		t.Errorf("record written as\n%s\nwant\n%s", b, old.String())
	}
}

// TestAddBlob adds a second encoding to a committed record.
func TestAddBlob(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, _ := s.NewWorkspace("img")
	os.WriteFile(filepath.Join(ws.Upper, "f"), []byte("x"), 0o644)
	key := digest.FromString("key")
	if _, err := s.Commit(ws, Record{Key: key, Image: "img"}, nil); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(t.TempDir(), "sq")
	os.WriteFile(blob, []byte("squash"), 0o644)
	d := v1.Descriptor{Digest: "sha256:2a7b0d1ed9b7f6b0b1b5c8c1f0ad5a1e0d2ad0a5d1b8e44b0b6b16f9c0e1d2a3", Size: 6}
	rec, err := s.AddBlob(key, CommitBlob{Path: blob, LayerBlob: LayerBlob{Type: "squashfs", Descriptor: d, DiffID: d.Digest.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Blob("squashfs", false); !ok {
		t.Fatal("record lacks the added blob")
	}
	got, _, err := s.Lookup(key)
	if err != nil || got == nil {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	if _, ok := got.Blob("squashfs", false); !ok {
		t.Error("the stored record lacks the added blob")
	}
	if last := s.Last("img"); last == nil || len(last.Layers) != 1 {
		t.Errorf("last record = %+v", last)
	}
}

// TestCommittedLayersTrustsOnlyRecordsStrataWrote maps a committed blob
// to its layer folder, and ignores the same record under another key's
// file name, as Lookup would.
func TestCommittedLayersTrustsOnlyRecordsStrataWrote(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, _ := s.NewWorkspace("img")
	os.WriteFile(filepath.Join(ws.Upper, "f"), []byte("x"), 0o644)
	key := digest.FromString("key")
	blob := filepath.Join(ws.Out, "blob")
	os.WriteFile(blob, []byte("layer"), 0o644)
	d := digest.FromString("layer")
	rec, err := s.Commit(ws, Record{Key: key, Image: "img"}, []CommitBlob{{Path: blob, LayerBlob: LayerBlob{Type: "tar+gzip", Descriptor: v1.Descriptor{Digest: d, Size: 5}, DiffID: d.String()}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.CommittedLayers(); err != nil || got[d] != s.LayerDir(rec.LayerDir) {
		t.Fatalf("CommittedLayers = %v, %v; want %s in %s", got, err, d, rec.LayerDir)
	}
	other := digest.FromString("other")
	if err := os.Rename(s.recordPath(key), s.recordPath(other)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CommittedLayers(); err != nil || len(got) != 0 {
		t.Errorf("a record under another key's name: CommittedLayers = %v, %v", got, err)
	}
}
