package dsl_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
)

// FuzzLayoutBase evaluates an image on a dsl.Layout base whose index.json
// holds the fuzzed bytes: the index is read when the definition is
// evaluated, to put the base's manifest digest into the cache key.
// Evaluation must refuse the layout with a problem naming the Go line and
// the layout, or give as base digest a well-formed digest that the index
// lists under the tag asked for.
func FuzzLayoutBase(f *testing.F) {
	m := digest.FromString("manifest").String()
	for _, s := range []string{
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + m + `","size":7,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}`,
		`{"schemaVersion":2,"manifests":[{"digest":"` + m + `","annotations":{"org.opencontainers.image.ref.name":"other"}},{"digest":"` + m + `","annotations":{"org.opencontainers.image.ref.name":"t"}}]}`,
		`{"manifests":[{"digest":"","annotations":{"org.opencontainers.image.ref.name":"t"}}]}`,
		`{"manifests":[{"digest":"sha256:../../../etc/passwd","annotations":{"org.opencontainers.image.ref.name":"t"}}]}`,
		`{"manifests":[{"digest":"` + m + `"}]}`,
		`{"manifests":null}`, `{"manifests":{}}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	// One layout per fuzzing process, rewritten for each input: reading
	// it must change nothing, and a temporary folder per input would cost
	// more than the evaluation.
	box := f.TempDir()
	dir := filepath.Join(box, "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, index []byte) {
		for name, b := range map[string][]byte{"index.json": index, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		img := dsl.New("fuzz").From(dsl.Layout(dir, "t"))
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{}})
		if ents, _ := os.ReadDir(box); len(ents) != 1 {
			t.Fatalf("reading index %q wrote beside the layout: %v", index, ents)
		}
		if err != nil {
			var e *dsl.Error
			if !errors.As(err, &e) {
				t.Fatalf("index %q: %T is not a *dsl.Error: %v", index, err, err)
			}
			for _, p := range e.Problems {
				if !strings.Contains(p.Error(), "layout_fuzz_test.go:") || !strings.Contains(p.Error(), dir) {
					t.Fatalf("index %q: the problem does not name the Go line and the layout: %v", index, p)
				}
			}
			return
		}
		got := g.Node("fuzz").BaseDigest
		if err := got.Validate(); err != nil {
			t.Fatalf("index %q accepted with base digest %q: %v", index, got, err)
		}
		// The index is decoded here apart from dsl, as the OCI spec says.
		var idx struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(index, &idx); err != nil {
			t.Fatalf("index %q accepted but it is not JSON of an index: %v", index, err)
		}
		for _, m := range idx.Manifests {
			if m.Annotations["org.opencontainers.image.ref.name"] == "t" && m.Digest == got.String() {
				return
			}
		}
		t.Fatalf("index %q accepted with base digest %q, which it does not tag t", index, got)
	})
}
