package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// DownloadOptions tune Download and Probe.
type DownloadOptions struct {
	// Client makes the requests (default: http.DefaultClient, which honours
	// the proxy variables).
	Client *http.Client
	// CacheDir is where Probe keeps the downloads of unpinned URLs, by
	// digest, until a build moves them into its store (default: see
	// DefaultCacheDir).
	CacheDir string
	// Progress, when set, is told how a download goes: once when the
	// server answers, after every read that brought bytes, and once at
	// the end of the body. It is called on the downloading goroutine, so
	// it must be quick; throttling what people see is the caller's job.
	// A download served from the store or the download cache reports
	// nothing.
	Progress func(Progress)
}

// Progress reports a download under way.
type Progress struct {
	// Done is how many bytes of the body have arrived.
	Done int64
	// Total is the size the server announced (Content-Length), or -1
	// when it did not.
	Total int64
	// Finished is set on the last report, once the body was read whole.
	Finished bool
}

func (o DownloadOptions) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

func (o DownloadOptions) cacheDir() string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	return DefaultCacheDir()
}

// DefaultCacheDir is $XDG_CACHE_HOME/strata/downloads (~/.cache/...).
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "strata", "downloads")
}

// Download makes the content of url, pinned to sha256 (hex), available in
// the store and returns the blob's path. A store that holds the blob makes
// no request: pinned downloads are fetched once and reused offline. A
// download with another digest fails naming the URL, the expected and the
// actual digest, and stores nothing.
func Download(ctx context.Context, st *storage.Store, url, sha256Hex string, o DownloadOptions) (string, error) {
	want := digest.NewDigestFromEncoded(digest.SHA256, sha256Hex)
	if err := want.Validate(); err != nil {
		return "", fmt.Errorf("download %s: %q is not a sha256 digest in hex: %w", url, sha256Hex, err)
	}
	blob := st.BlobPath(want.String())
	if haveBlob(st, want) {
		return blob, nil
	}
	mismatch := func(got digest.Digest) error {
		return fmt.Errorf("download %s: expected %s, got %s: %w", url, want, got, ErrDigestMismatch)
	}
	// An unpinned URL was downloaded by Probe while the definitions were
	// evaluated: take that copy rather than asking again (and maybe
	// getting other content than the digest the cache key holds).
	if f, err := os.Open(filepath.Join(o.cacheDir(), "sha256", sha256Hex)); err == nil {
		defer f.Close()
		if err := putVerified(ctx, st, f, want, mismatch); err == nil {
			return blob, nil
		}
	}
	body, total, err := get(ctx, url, o)
	if err != nil {
		return "", err
	}
	defer body.Close()
	var r io.Reader = body
	if o.Progress != nil {
		o.Progress(Progress{Total: total})
		r = &progressReader{r: body, total: total, report: o.Progress}
	}
	if err := putVerified(ctx, st, r, want, mismatch); err != nil {
		if strings.Contains(err.Error(), url) {
			return "", err
		}
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	return blob, nil
}

// Probe downloads url, which no digest pins, into the download cache and
// returns its digest ("sha256:..."), so that evaluating definitions can
// put the content into the cache key; Download then takes that copy.
func Probe(ctx context.Context, url string, o DownloadOptions) (_ digest.Digest, err error) {
	body, _, err := get(ctx, url, o)
	if err != nil {
		return "", err
	}
	defer body.Close()
	dir := filepath.Join(o.cacheDir(), "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".download-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), layer.ReaderWithContext(ctx, body)); err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(dir, sum)); err != nil {
		return "", err
	}
	return digest.NewDigestFromEncoded(digest.SHA256, sum), nil
}

// get requests url and returns the body and its announced size (-1 when
// unknown).
func get(ctx context.Context, url string, o DownloadOptions) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("download %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "strata")
	resp, err := o.client().Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("download %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}

// progressReader reports what was read through it.
type progressReader struct {
	r      io.Reader
	done   int64
	total  int64
	report func(Progress)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	switch {
	case err == io.EOF:
		p.report(Progress{Done: p.done, Total: p.total, Finished: true})
	case n > 0:
		p.report(Progress{Done: p.done, Total: p.total})
	}
	return n, err
}
