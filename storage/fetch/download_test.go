package fetch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
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
	if d.String() != "sha256:"+sha([]byte("unpinned")) {
		t.Fatalf("Probe = %s", d)
	}
	srv.Close()
	st := openStore(t, t.TempDir())
	if _, err := fetch.Download(ctx, st, srv.URL+"/u", d.Encoded(), o); err != nil {
		t.Fatalf("Download after Probe needed the network: %v", err)
	}
}

// TestDownloadProgress serves a body in two parts and sends the second
// only once a progress report counted the first: reports carry the bytes
// done and the announced total while the download is under way, and the
// last one says it finished.
func TestDownloadProgress(t *testing.T) {
	first, second := strings.Repeat("a", 4096), strings.Repeat("b", 8192)
	body := first + second
	sawFirst := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-sawFirst:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, second)
	}))
	defer srv.Close()
	var reports []fetch.Progress
	var once sync.Once
	progress := func(p fetch.Progress) {
		reports = append(reports, p)
		if p.Done >= int64(len(first)) {
			once.Do(func() { close(sawFirst) })
		}
	}
	st := openStore(t, t.TempDir())
	if _, err := fetch.Download(context.Background(), st, srv.URL+"/big.bin", sha([]byte(body)), fetch.DownloadOptions{Progress: progress}); err != nil {
		t.Fatal(err)
	}
	if len(reports) < 3 {
		t.Fatalf("reports %+v: want the start, at least one under way and the end", reports)
	}
	if reports[0] != (fetch.Progress{Total: int64(len(body))}) {
		t.Errorf("first report %+v, want 0 of %d", reports[0], len(body))
	}
	underWay := false
	for i, p := range reports {
		if p.Total != int64(len(body)) {
			t.Errorf("report %d: total %d, want the Content-Length %d", i, p.Total, len(body))
		}
		if i > 0 && p.Done < reports[i-1].Done {
			t.Errorf("report %d: done went back from %d to %d", i, reports[i-1].Done, p.Done)
		}
		if p.Done > 0 && p.Done < int64(len(body)) && !p.Finished {
			underWay = true
		}
		if p.Finished != (i == len(reports)-1) {
			t.Errorf("report %d of %d: finished = %v", i, len(reports), p.Finished)
		}
	}
	if !underWay {
		t.Errorf("no report while the body was arriving: %+v", reports)
	}
	if last := reports[len(reports)-1]; last.Done != int64(len(body)) {
		t.Errorf("last report %+v, want all %d bytes", last, len(body))
	}

	// The blob is in the store now: no request, no report.
	reports = nil
	if _, err := fetch.Download(context.Background(), st, srv.URL+"/big.bin", sha([]byte(body)), fetch.DownloadOptions{Progress: progress}); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 0 {
		t.Errorf("a download from the store reported %+v", reports)
	}
}
