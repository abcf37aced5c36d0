package runtime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
