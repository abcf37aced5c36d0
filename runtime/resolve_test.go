package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage/registry"
)

// An unpinned URL is refused unless allowed; allowed, the resolver
// downloads it and its content digest enters the cache key.
func TestResolverUnpinnedURL(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	body := "v1"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
	defer srv.Close()
	img := dsl.New("u").From(dsl.Scratch()).Import(dsl.URL(srv.URL+"/tool", ""), "/tool")
	opts := dsl.Options{Resolver: runtime.NewResolver(registry.Options{})}
	if _, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, opts); err == nil || !strings.Contains(err.Error(), "--allow-unpinned-urls") {
		t.Fatalf("unpinned URL without the flag: %v", err)
	}
	opts.AllowUnpinnedURLs = true
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, opts)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	if got := g.Node("u").Imports[0]; got.String() != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("import digest %q, want the content's", got)
	}
	first := g.Node("u").Key
	body = "v2"
	opts.Resolver = runtime.NewResolver(registry.Options{})
	g, err = dsl.Evaluate(context.Background(), []*dsl.Image{img}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if g.Node("u").Key == first {
		t.Error("changed content behind an unpinned URL kept the cache key")
	}
}

// Different URLs resolve in parallel, and one URL asked for by many
// callers at once is downloaded once.
func TestResolverParallelAndOnce(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var mu sync.Mutex
	hits := map[string]int{}
	var arrived sync.WaitGroup
	arrived.Add(2)
	both := make(chan struct{})
	go func() { arrived.Wait(); close(both) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		first := hits[r.URL.Path] == 1
		mu.Unlock()
		if first {
			arrived.Done()
		}
		// Each answer waits for both URLs to be asked: a resolver that
		// resolves one at a time never asks for the second.
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			http.Error(w, "the other URL was not asked while this one was", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(r.URL.Path))
	}))
	defer srv.Close()

	r := runtime.NewResolver(registry.Options{})
	paths := []string{"/a", "/b", "/a", "/b", "/a", "/b"}
	got := make([]digest.Digest, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() { got[i], errs[i] = r.SourceDigest(context.Background(), dsl.URL(srv.URL+p, "")) })
	}
	wg.Wait()
	for i, p := range paths {
		if errs[i] != nil {
			t.Fatalf("%s: %v", p, errs[i])
		}
		if want := digest.FromString(p); got[i] != want {
			t.Errorf("%s: digest %s, want %s", p, got[i], want)
		}
	}
	if hits["/a"] != 1 || hits["/b"] != 1 {
		t.Errorf("requests %v, want one per URL", hits)
	}
}
