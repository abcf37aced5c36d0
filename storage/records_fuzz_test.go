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

	"github.com/strata-build/strata/dsl"
)

// fuzzRecordStore is a store holding what a record may point at: one
// layer folder and one blob, so that records made from the seeds can be
// accepted and the fuzzer explores more than the refusals.
type fuzzRecordStore struct {
	st       *Store
	key      digest.Digest
	layerDir string
	blob     digest.Digest
	size     int64
}

func newFuzzRecordStore(f *testing.F) *fuzzRecordStore {
	st, err := Open(context.Background(), f.TempDir(), OpenOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	key := digest.FromString("fuzz key")
	content := []byte("a layer blob")
	fs := &fuzzRecordStore{st: st, key: key, layerDir: "k-" + keyFile(key), blob: digest.FromBytes(content), size: int64(len(content))}
	if err := os.MkdirAll(st.LayerDir(fs.layerDir), 0o755); err != nil {
		f.Fatal(err)
	}
	p := st.BlobPath(fs.blob.String())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		f.Fatal(err)
	}
	return fs
}

// seed is a record as Commit writes it, JSON-encoded.
func (fs *fuzzRecordStore) seed(f *testing.F, rec Record) []byte {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzCacheRecord writes the fuzzed bytes as the cache record of a key
// and as the last record of an image, and reads them as a build does
// (Lookup, Last, then the rebuild explanation from its key inputs).
// Reading never fails the build: a record is either refused (the image
// is rebuilt) or has what a build reads from it: the key looked up, the
// image's name, a layer folder directly under layers/ unless the layer is
// empty, and layer blobs with a type, a well-formed digest and diff ID
// and the stored size. Lookup may remove the refused record, never the
// layer folder or blob it names.
func FuzzCacheRecord(f *testing.F) {
	fs := newFuzzRecordStore(f)
	keyInputs := json.RawMessage(`{"v":2,"name":"fuzz","parent":"scratch","steps":[{"run":"true"}],"sourceDateEpoch":0}`)
	good := Record{Key: fs.key, Image: "fuzz", LayerDir: fs.layerDir, KeyInputs: keyInputs,
		Layers: []LayerBlob{{Type: "tar+gzip", Descriptor: v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: fs.blob, Size: fs.size}, DiffID: fs.blob.String()}}}
	f.Add(fs.seed(f, good))
	f.Add(fs.seed(f, Record{Key: fs.key, Image: "fuzz", Empty: true, KeyInputs: keyInputs}))
	noLayers := good
	noLayers.Layers = nil
	f.Add(fs.seed(f, noLayers))
	f.Add([]byte(`{"key":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"keyInputs":{"v":"x","steps":[{"import":{}}],"params":{"A":null}}}`))

	img := dsl.New("fuzz").From(dsl.Scratch()).Run("true")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{}})
	if err != nil {
		f.Fatal(err)
	}
	node := g.Node("fuzz")
	f.Fuzz(func(t *testing.T, data []byte) {
		st := fs.st
		for _, p := range []string{st.recordPath(fs.key), st.lastPath("fuzz")} {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rec, dropped, err := st.Lookup(fs.key)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if rec != nil {
			if dropped != "" {
				t.Fatalf("Lookup returned a record and a reason to drop it: %s", dropped)
			}
			checkRecord(t, st, fs.key, rec, data)
		}
		if last := st.Last("fuzz"); last != nil {
			_ = dsl.Explain(last.KeyInputs, node)
		}
		if _, err := os.Stat(st.LayerDir(fs.layerDir)); err != nil {
			t.Fatalf("reading the record %q removed the layer folder: %v", data, err)
		}
		if _, err := os.Stat(st.BlobPath(fs.blob.String())); err != nil {
			t.Fatalf("reading the record %q removed the blob: %v", data, err)
		}
	})
}

// checkRecord fails unless rec, accepted by Lookup(key), has what a build
// reads from it.
func checkRecord(t *testing.T, st *Store, key digest.Digest, rec *Record, data []byte) {
	t.Helper()
	if rec.Key != key {
		t.Fatalf("record %q accepted for %s names key %q", data, key, rec.Key)
	}
	if rec.Image == "" {
		t.Fatalf("record %q accepted without an image name", data)
	}
	if !rec.Empty {
		if rec.LayerDir == "" || rec.LayerDir == "." || rec.LayerDir == ".." || strings.Contains(rec.LayerDir, "/") {
			t.Fatalf("record %q accepted with layer folder %q, not a name under layers/", data, rec.LayerDir)
		}
		if fi, err := os.Stat(st.LayerDir(rec.LayerDir)); err != nil || !fi.IsDir() {
			t.Fatalf("record %q accepted with layer folder %q that is not a folder: %v", data, rec.LayerDir, err)
		}
	}
	for _, b := range rec.Layers {
		if !b.Type.Known() {
			t.Fatalf("record %q accepted with layer type %q", data, b.Type)
		}
		if err := b.Descriptor.Digest.Validate(); err != nil {
			t.Fatalf("record %q accepted with layer blob digest %q: %v", data, b.Descriptor.Digest, err)
		}
		if err := digest.Digest(b.DiffID).Validate(); err != nil {
			t.Fatalf("record %q accepted with diff ID %q: %v", data, b.DiffID, err)
		}
		fi, err := os.Stat(st.BlobPath(b.Descriptor.Digest.String()))
		if err != nil || fi.Size() != b.Descriptor.Size {
			t.Fatalf("record %q accepted with layer blob %s that is not stored with its size: %v", data, b.Descriptor.Digest, err)
		}
	}
}
