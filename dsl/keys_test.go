package dsl_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
)

// pinResolver answers every tag and unpinned URL with a digest made of
// what it was asked.
type pinResolver struct{}

func (pinResolver) BaseDigest(_ context.Context, b dsl.Base) (digest.Digest, error) {
	switch b.(type) {
	case *dsl.PullBase:
		return digest.Digest("sha256:" + strings.Repeat("1", 64)), nil
	case *dsl.TarballBase:
		return digest.Digest("sha256:" + strings.Repeat("2", 64)), nil
	default:
		return "", nil
	}
}

func (pinResolver) SourceDigest(context.Context, dsl.Source) (digest.Digest, error) {
	return digest.Digest("sha256:" + strings.Repeat("3", 64)), nil
}

// TestCacheKeysArePinned pins the cache keys of definitions using every
// kind of base and import: a key is a record's file name in every store
// and a tag in every registry cache, so a change to how it is computed
// (or to the types it goes through) must be deliberate.
func TestCacheKeysArePinned(t *testing.T) {
	layout := t.TempDir()
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("4", 64) + `","size":2},"layers":[]}`
	md := digest.FromString(manifest)
	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"digest":"` + md.String() + `","size":` + strconv.Itoa(len(manifest)) + `,` +
		`"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}`
	for name, content := range map[string]string{"index.json": index, "blobs/sha256/" + md.Encoded(): manifest} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(layout, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layout, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The import's mode is in its digest: set, not left to the umask.
	greeting := filepath.Join(t.TempDir(), "greeting.txt")
	if err := os.WriteFile(greeting, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(greeting, 0o644); err != nil {
		t.Fatal(err)
	}
	pin := strings.Repeat("5", 64)
	scratch := dsl.New("scratch").From(dsl.Scratch()).Run("echo scratch").
		Env("A", "1").WorkDir("/w").BuildEnv("B", "${{V}}").
		Import(dsl.File(greeting), "/etc/greeting", dsl.Owner(1, 2), dsl.Mode(0o600)).
		Import(dsl.URL("https://example.com/pinned.tar", pin), "/pinned")
	child := dsl.New("child").From(scratch).Run("echo child").
		Import(dsl.FromImage(scratch, "/etc/../etc/greeting"), "/copy").
		Import(dsl.URL("https://example.com/unpinned.tar", ""), "/unpinned")
	imgs := []*dsl.Image{
		child,
		dsl.New("layout").From(dsl.Layout(layout, "v1")).Run("echo layout"),
		dsl.New("pinned").From(dsl.Pull("example.com/a@sha256:"+pin, dsl.Platform("linux/arm64"))).Run("true"),
		dsl.New("tag").From(dsl.Pull("example.com/a:1")).Run("true"),
		dsl.New("tarball").From(dsl.Tarball("https://example.com/base.tar.gz", dsl.SHA256(pin))).Run("true"),
		dsl.New("unpinned-tarball").From(dsl.Tarball("https://example.com/base.tar.gz")).Run("true"),
	}
	g, err := dsl.Evaluate(context.Background(), imgs, dsl.Options{SourceDateEpoch: 1, Params: map[string]string{"V": "v"},
		Resolver: pinResolver{}, AllowUnpinnedURLs: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"scratch":          "sha256:e219db774881b92d08423564b40c5e0488208ff48adeef9df65a2337445fe82f",
		"child":            "sha256:c6d5679dbfe0fe67444626120b153cfa0fab518d9f4aaae8ed371ecc703c6689",
		"layout":           "sha256:0f4bed697d0214f321f004a023bf12acf63bbf12cbf5785040e044d6aa7a6189",
		"pinned":           "sha256:ce15aaf95a5096c9139dae21e2cb72561d38da735cb7738d3164083f812935e3",
		"tag":              "sha256:31e3c9753f58d4814e5217fdfd7008787af510e5a7da135b23eb0be5dbb10b7a",
		"tarball":          "sha256:132337cde711b9ae0931a036eb0952cc1829dee3b05dbb10d693bafb173efc1c",
		"unpinned-tarball": "sha256:9159e11945c2c1958e790c3e2aa7619914221e92ef514242d73df448e103a791",
	}
	if len(g.Nodes) != len(want) {
		t.Errorf("%d nodes, want %d", len(g.Nodes), len(want))
	}
	for _, n := range g.Nodes {
		if got := string(n.Key); got != want[n.Name] {
			t.Errorf("%s: key %s, want %s\n%s", n.Name, got, want[n.Name], n.KeyInputs)
		}
	}
}
