package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/testregistry"
)

// sbomOf returns the SBOM referrer of the image tagged tag in layout: its
// artifact manifest's digest and the purls of the document's packages.
func sbomOf(t *testing.T, layout, tag string) (string, []string) {
	t.Helper()
	var idx v1.Index
	readIndex(t, layout, &idx)
	var subject string
	for _, d := range idx.Manifests {
		if d.Annotations[v1.AnnotationRefName] == tag {
			subject = d.Digest.String()
		}
	}
	for _, d := range idx.Manifests {
		if d.ArtifactType != "application/spdx+json" {
			continue
		}
		var m v1.Manifest
		readJSON(t, layout, d.Digest.String(), &m)
		if m.Subject == nil || m.Subject.Digest.String() != subject {
			continue
		}
		if m.ArtifactType != "application/spdx+json" || m.Config.MediaType != v1.MediaTypeEmptyJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != "application/spdx+json" {
			t.Fatalf("%s: SBOM manifest %+v", tag, m)
		}
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				ExternalRefs []struct {
					Locator string `json:"referenceLocator"`
				} `json:"externalRefs"`
			} `json:"packages"`
		}
		readJSON(t, layout, m.Layers[0].Digest.String(), &doc)
		if doc.SPDXVersion != "SPDX-2.3" {
			t.Errorf("%s: SBOM version %q", tag, doc.SPDXVersion)
		}
		var purls []string
		for _, p := range doc.Packages {
			for _, r := range p.ExternalRefs {
				purls = append(purls, r.Locator)
			}
		}
		return d.Digest.String(), purls
	}
	t.Fatalf("no SBOM of %s (%s) in %s", tag, subject, layout)
	return "", nil
}

func readIndex(t *testing.T, layout string, idx *v1.Index) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, idx); err != nil {
		t.Fatal(err)
	}
}

// TestSBOM: every image gets an SBOM referrer listing its dpkg and apk
// packages, as the overlay shows them (a deleted database is not read);
// a cached build writes nothing; publish to a layout copies it; a second
// build from scratch gives the same SBOM digests; inspect lists it;
// --no-sbom leaves it out.
func TestSBOM(t *testing.T) {
	b := newBuild(t, "testdata/sbom")
	b.must(nil, "build", "pkgs", "slim")
	digests := map[string]string{}
	for tag, want := range map[string][]string{
		"pkgs": {"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64", "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64", "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64"},
		"slim": {"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"},
	} {
		d, purls := sbomOf(t, b.layout, tag)
		digests[tag] = d
		all := strings.Join(purls, "\n")
		for _, p := range want {
			if !strings.Contains(all, p) {
				t.Errorf("%s: SBOM lacks %s:\n%s", tag, p, all)
			}
		}
		if tag == "slim" && strings.Contains(all, "pkg:apk/") {
			t.Errorf("slim: SBOM lists apk packages its image deleted:\n%s", all)
		}
	}
	// Cached: nothing is scanned or written again.
	before, _ := os.ReadFile(filepath.Join(b.layout, "index.json"))
	cached := b.must([]string{"STRATA_TIMINGS=1"}, "build", "pkgs", "slim")
	if after, _ := os.ReadFile(filepath.Join(b.layout, "index.json")); string(before) != string(after) {
		t.Errorf("a cached build changed index.json:\n%s\n%s", before, after)
	}
	if strings.Contains(cached, "sbom: scan") {
		t.Errorf("a cached build scanned for its SBOM again:\n%s", cached)
	}
	// Published to a layout, the SBOM goes along.
	dest := filepath.Join(t.TempDir(), "dest")
	b.must(nil, "publish", "--to", "oci:"+dest, "--store", b.store, "--layout", b.layout, "pkgs")
	if got, _ := sbomOf(t, dest, "pkgs:latest"); got != digests["pkgs"] {
		t.Errorf("SBOM %s published to a layout as %s", digests["pkgs"], got)
	}
	out := b.must(nil, "inspect", "pkgs")
	if !strings.Contains(out, "sbom: "+digests["pkgs"]+"  SPDX 2.3 JSON, 3 packages") {
		t.Errorf("inspect does not list the SBOM %s:\n%s", digests["pkgs"], out)
	}
	if tags := strings.Fields(b.must(nil, "inspect")); len(tags) == 0 {
		t.Error("inspect of every tag printed nothing")
	}

	// From scratch, in another store and layout: the same digests.
	again := newBuild(t, "testdata/sbom")
	again.must(nil, "build", "pkgs", "slim")
	for tag, d := range digests {
		if got, _ := sbomOf(t, again.layout, tag); got != d {
			t.Errorf("%s: SBOM %s, then %s when built again", tag, d, got)
		}
	}

	off := newBuild(t, "testdata/sbom")
	off.must(nil, "build", "--no-sbom", "pkgs")
	var idx v1.Index
	readIndex(t, off.layout, &idx)
	for _, d := range idx.Manifests {
		if d.ArtifactType != "" {
			t.Errorf("--no-sbom: the layout lists %s", d.ArtifactType)
		}
	}
}

// TestPublishSBOM: publish pushes each image's SBOM as a referrer of the
// image: Debian's docker-registry has no referrers API, so it is found
// through the fallback tag, as remote.Referrers reads it; publishing
// again sends it again without harm.
func TestPublishSBOM(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{})
	b := newBuild(t, "testdata/sbom")
	b.must(nil, "build", "pkgs")
	want, _ := sbomOf(t, b.layout, "pkgs")
	subject := layoutDigest(t, b.layout, "pkgs")
	prefix := reg.Addr + "/sbom"
	publish := []string{"publish", "--to", prefix, "--insecure", "--store", b.store, "--layout", b.layout, "pkgs"}
	out := b.must(nil, publish...)
	if !strings.Contains(out, "pkgs: published its SBOM "+want+" as a referrer of "+subject) {
		t.Errorf("publish does not name the SBOM %s:\n%s", want, out)
	}
	b.must(nil, publish...)
	d, err := name.NewDigest(prefix+"/pkgs@"+subject, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, r := range m.Manifests {
		if r.Digest.String() == want && r.ArtifactType == "application/spdx+json" {
			found++
		}
	}
	if found != 1 {
		t.Errorf("the referrers of pkgs list the SBOM %s %d times: %+v", want, found, m.Manifests)
	}
	// --no-sbom publishes the image alone, though the layout holds its SBOM.
	bare := reg.Addr + "/bare"
	if out := b.must(nil, "publish", "--no-sbom", "--to", bare, "--insecure", "--store", b.store, "--layout", b.layout, "pkgs"); strings.Contains(out, "SBOM") {
		t.Errorf("publish --no-sbom speaks of an SBOM:\n%s", out)
	}
	bd, err := name.NewDigest(bare+"/pkgs@"+subject, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if idx, err := remote.Referrers(bd); err != nil {
		t.Fatal(err)
	} else if m, err := idx.IndexManifest(); err != nil || len(m.Manifests) != 0 {
		t.Errorf("publish --no-sbom pushed referrers: %+v, %v", m, err)
	}
	img, err := remote.Image(d.Context().Digest(want))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("the SBOM in the registry: %d layers, %v", len(layers), err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var doc struct {
		Packages []struct{ Name string } `json:"packages"`
	}
	if err := json.NewDecoder(rc).Decode(&doc); err != nil || len(doc.Packages) != 4 {
		t.Errorf("the SBOM in the registry: %+v, %v", doc, err)
	}
}
