package regcache

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/strata-build/strata/storage/registry"
)

// Cache is one registry repository used as a build cache.
type Cache struct {
	// Repo is the repository holding the records and their blobs.
	Repo name.Repository
	opts registry.Options
}

// ErrMiss is returned by Fetch when the registry has no record for the
// key: the normal outcome for an image nobody has built before.
var ErrMiss = errors.New("not in the registry cache")

// New returns the cache in the repository repo ("host[:port]/path"). It
// makes no request: an unreachable registry is found (and reported) by
// the first Fetch or Push.
func New(repo string, o registry.Options) (*Cache, error) {
	r, err := registry.ParseRepository(repo, o)
	if err != nil {
		return nil, err
	}
	return &Cache{Repo: r, opts: o}, nil
}

// String returns the repository's name, for messages.
func (c *Cache) String() string { return c.Repo.Name() }

// remoteOptions are the options of every call. Retries are short: a cache
// that does not answer must not hold up a build that can run its steps
// instead.
func (c *Cache) remoteOptions(ctx context.Context) ([]remote.Option, error) {
	o, err := registry.RemoteOptions(ctx, c.opts)
	if err != nil {
		return nil, err
	}
	return append(o, shortRetry), nil
}

// shortRetry tries a failed request once more after a short pause.
var shortRetry = remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 2})

// Unreachable reports whether err says the registry cannot be used at all
// (no connection, refused credentials) rather than that one record is bad:
// a build stops asking such a cache after the first failure.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, ErrMiss) || errors.Is(err, context.Canceled) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden || te.StatusCode >= 500
	}
	var re *recordError
	return !errors.As(err, &re)
}

// recordError is a problem with the content of one record or its blobs:
// the registry works, this entry is unusable.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}
