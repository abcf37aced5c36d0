package fetch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-build/strata/storage/fetch"
)

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestDownloadOnceThenOffline(t *testing.T) {
	ctx := context.Background()
	body := []byte("tool v1\n")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(body)
	}))
	st := openStore(t, t.TempDir())
	url := srv.URL + "/tool.sh"
	p, err := fetch.Download(ctx, st, url, sha(body), fetch.DownloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(body) {
		t.Fatalf("downloaded %q", b)
	}
	srv.Close()
	if _, err := fetch.Download(ctx, st, url, sha(body), fetch.DownloadOptions{}); err != nil {
		t.Fatalf("offline reuse: %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests, want 1", hits.Load())
	}
}

func TestDownloadMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("evil")) }))
	defer srv.Close()
	st := openStore(t, t.TempDir())
	want := sha([]byte("good"))
	url := srv.URL + "/f"
	_, err := fetch.Download(context.Background(), st, url, want, fetch.DownloadOptions{})
	if !errors.Is(err, fetch.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	for _, s := range []string{url, "sha256:" + want, "sha256:" + sha([]byte("evil"))} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if _, err := os.Stat(st.BlobPath("sha256:" + sha([]byte("evil")))); err == nil {
		t.Error("the wrong content was stored")
	}
}

func TestProbeThenDownloadOffline(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("unpinned")) }))
	o := fetch.DownloadOptions{CacheDir: t.TempDir()}
	d, err := fetch.Probe(ctx, srv.URL+"/u", o)
	if err != nil {
		t.Fatal(err)
	}
	if d != "sha256:"+sha([]byte("unpinned")) {
		t.Fatalf("Probe = %s", d)
	}
	srv.Close()
	st := openStore(t, t.TempDir())
	if _, err := fetch.Download(ctx, st, srv.URL+"/u", strings.TrimPrefix(d, "sha256:"), o); err != nil {
		t.Fatalf("Download after Probe needed the network: %v", err)
	}
}
