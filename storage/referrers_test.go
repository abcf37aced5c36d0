package storage

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestLayoutReferrers: an artifact whose subject is a tagged image is
// listed in index.json without a tag, survives GC with its blobs, is
// replaced by a newer one of its type, and goes (blobs too) when the
// image's tag moves to another manifest.
func TestLayoutReferrers(t *testing.T) {
	ctx := context.Background()
	s, l, out, put := layoutFixture(t)
	blob := func(d v1.Descriptor) string { return filepath.Join(out, "blobs", "sha256", d.Digest.Encoded()) }
	const typ = "application/spdx+json"
	artifact := func(subject v1.Descriptor, data string) v1.Descriptor {
		d, err := s.PutArtifact(ctx, typ, []byte(data), subject, map[string]string{v1.AnnotationCreated: "1970-01-01T00:00:00Z"})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.AddReferrer(ctx, s, d, subject.Digest); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := put("A=1"), put("B=1")
	if err := l.Tag(ctx, s, "img", a); err != nil {
		t.Fatal(err)
	}
	first := artifact(a, `{"n":1}`)
	if again, _ := s.PutArtifact(ctx, typ, []byte(`{"n":1}`), a, map[string]string{v1.AnnotationCreated: "1970-01-01T00:00:00Z"}); again.Digest != first.Digest {
		t.Error("the same artifact gave two digests")
	}
	idx1, _ := os.ReadFile(filepath.Join(out, "index.json"))
	artifact(a, `{"n":1}`)
	if idx2, _ := os.ReadFile(filepath.Join(out, "index.json")); string(idx1) != string(idx2) {
		t.Error("adding the same referrer again changed index.json")
	}
	var m v1.Manifest
	if err := l.ReadJSON(ctx, first.Digest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest != a.Digest || m.ArtifactType != typ || m.Config.MediaType != v1.MediaTypeEmptyJSON || len(m.Layers) != 1 {
		t.Fatalf("artifact manifest: %+v", m)
	}
	second := artifact(a, `{"n":2}`)
	refs, err := l.Referrers(ctx, a.Digest, typ)
	if err != nil || len(refs) != 1 || refs[0].Digest != second.Digest {
		t.Fatalf("referrers of the image: %v, %v; want only the second", refs, err)
	}
	if tags, _ := l.Tags(ctx); len(tags) != 1 {
		t.Errorf("tags %q: a referrer is listed as a tag", tags)
	}
	if err := l.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{blob(second), blob(m.Config)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("GC removed a referrer's blob: %v", err)
		}
	}
	if _, err := os.Stat(blob(m.Layers[0])); !os.IsNotExist(err) {
		t.Error("GC kept the replaced referrer's data")
	}

	// The tag moves: the old image's referrer goes with it.
	if err := l.Tag(ctx, s, "img", b); err != nil {
		t.Fatal(err)
	}
	if refs, _ := l.Referrers(ctx, a.Digest, ""); len(refs) != 0 {
		t.Errorf("referrers of the untagged image kept: %v", refs)
	}
	if err := l.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blob(second)); !os.IsNotExist(err) {
		t.Error("GC kept the dropped referrer")
	}
}
