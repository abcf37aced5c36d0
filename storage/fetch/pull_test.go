package fetch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/registry"
)

var insecure = fetch.PullOptions{Registry: registry.Options{Insecure: true}}

func push(t *testing.T, ref string, img v1.Image) digest.Digest {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return digest.Digest(d.String())
}

func TestPullCachesByDigest(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.host() + "/base:1"
	want := push(t, ref, img)
	reg.take()

	d, err := fetch.Resolve(ctx, "docker://"+ref, insecure)
	if err != nil {
		t.Fatal(err)
	}
	if d != want {
		t.Fatalf("Resolve = %s, want %s", d, want)
	}
	if reqs := reg.take(); count(reqs, "/manifests/") != 1 || count(reqs, "/blobs/") != 0 {
		t.Errorf("resolving a tag made these requests: %v; want one manifest request", reqs)
	}

	st := openStore(t, t.TempDir())
	got, err := fetch.Pull(ctx, st, ref, d, insecure)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if len(got.Manifest.Layers) != 2 || got.Manifest.Layers[1].Digest.String() != m.Layers[1].Digest.String() {
		t.Fatalf("pulled manifest layers %v, want %v", got.Manifest.Layers, m.Layers)
	}
	cfg, _ := img.ConfigFile()
	if got.Config.RootFS.DiffIDs[0].String() != cfg.RootFS.DiffIDs[0].String() {
		t.Errorf("config diff IDs differ")
	}
	for _, l := range got.Manifest.Layers {
		if _, err := os.Stat(st.BlobPath(l.Digest.String())); err != nil {
			t.Errorf("layer %s not in the store: %v", l.Digest, err)
		}
	}
	if reqs := reg.take(); count(reqs, "/blobs/") != 3 {
		t.Errorf("first pull requests: %v; want config and two layers", reqs)
	}

	// Pinned by digest, a second pull is served by the store alone.
	if _, err := fetch.Resolve(ctx, reg.host()+"/base@"+d.String(), insecure); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch.Pull(ctx, st, reg.host()+"/base@"+d.String(), d, insecure); err != nil {
		t.Fatal(err)
	}
	if reqs := reg.take(); len(reqs) != 0 {
		t.Errorf("pull of a digest the store holds made requests: %v", reqs)
	}
}

func TestPullRefusesPlainHTTPUnlessInsecure(t *testing.T) {
	reg := newRegistry(t)
	img, _ := random.Image(100, 1)
	ref := reg.host() + "/base:1"
	push(t, ref, img)
	_, err := fetch.Resolve(context.Background(), ref, fetch.PullOptions{})
	if !errors.Is(err, fetch.ErrPlainHTTP) {
		t.Fatalf("Resolve over plain HTTP without Insecure: %v, want ErrPlainHTTP", err)
	}
	if !strings.Contains(err.Error(), "dsl.Insecure()") {
		t.Errorf("error does not say how to allow it: %v", err)
	}
}

func TestPullPlatformOfIndex(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	var idx v1.ImageIndex = empty.Index
	digests := map[string]string{}
	for _, arch := range []string{"amd64", "arm64", runtime.GOARCH} {
		if _, ok := digests[arch]; ok {
			continue
		}
		img, _ := random.Image(100, 1)
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		d, _ := img.Digest()
		digests[arch] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	r, _ := name.ParseReference(reg.host()+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, err := fetch.Resolve(ctx, r.String(), insecure)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, t.TempDir())
	for _, tc := range []struct{ platform, want string }{{"", digests[runtime.GOARCH]}, {"linux/arm64", digests["arm64"]}, {"linux/amd64", digests["amd64"]}} {
		o := insecure
		o.Platform = tc.platform
		img, err := fetch.Pull(ctx, st, r.String(), d, o)
		if err != nil {
			t.Fatalf("platform %q: %v", tc.platform, err)
		}
		if img.Descriptor.Digest.String() != tc.want {
			t.Errorf("platform %q chose %s, want %s", tc.platform, img.Descriptor.Digest, tc.want)
		}
	}
	o := insecure
	o.Platform = "linux/s390x"
	_, err = fetch.Pull(ctx, st, r.String(), d, o)
	if err == nil || !strings.Contains(err.Error(), "no image for linux/s390x") || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("missing platform: %v", err)
	}
}

func TestPullRejectsWrongContent(t *testing.T) {
	reg := newRegistry(t)
	img, _ := random.Image(100, 1)
	ref := reg.host() + "/base:1"
	push(t, ref, img)
	st := openStore(t, t.TempDir())
	other, _ := random.Image(100, 1)
	od, _ := other.Digest()
	if _, err := fetch.Pull(context.Background(), st, ref, digest.Digest(od.String()), insecure); err == nil {
		t.Fatal("pull of a digest the registry does not have succeeded")
	}
	if _, err := os.Stat(st.BlobPath(od.String())); err == nil {
		t.Error("a blob was stored under a digest it does not have")
	}
	leftovers, _ := os.ReadDir(filepath.Join(st.Root, "tmp"))
	if len(leftovers) != 0 {
		t.Errorf("tmp/ keeps %d files after a failed pull", len(leftovers))
	}
}
