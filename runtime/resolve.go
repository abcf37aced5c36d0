package runtime

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/flight"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/registry"
)

// Resolver is the dsl.Resolver of strata builds: it asks a registry which
// digest a base's tag points at (one HEAD request per tag and build) and
// downloads the URLs no digest pins into the download cache, where the
// build then finds them. Each answer is remembered, so images sharing a
// base or a URL agree on its digest within one evaluation. It is safe for
// concurrent use: different tags and URLs resolve in parallel, and callers
// asking for one at the same time share one request.
type Resolver struct {
	registry registry.Options
	download fetch.DownloadOptions

	group singleflight.Group
	mu    sync.Mutex
	memo  map[string]digest.Digest // successes only: a failure is asked again
}

// NewResolver returns a Resolver whose requests use reg (credentials, CA,
// --insecure).
func NewResolver(reg registry.Options) *Resolver {
	return &Resolver{registry: reg, memo: map[string]digest.Digest{}}
}

// BaseDigest returns the manifest (or index) digest a *dsl.PullBase's tag
// points at, or the content digest of an unpinned *dsl.TarballBase URL.
func (r *Resolver) BaseDigest(ctx context.Context, b dsl.Base) (digest.Digest, error) {
	switch b := b.(type) {
	case *dsl.PullBase:
		return r.once(ctx, "pull "+b.Ref, func(ctx context.Context) (digest.Digest, error) {
			return fetch.Resolve(ctx, b.Ref, pullOptions(r.registry, b))
		})
	case *dsl.TarballBase:
		if b.URL == "" {
			return "", fmt.Errorf("tarball %s: nothing to resolve for a local file", b.Path)
		}
		return r.once(ctx, "url "+b.URL, r.probe(b.URL))
	}
	return "", fmt.Errorf("cannot resolve a base of type %T", b)
}

// SourceDigest downloads an unpinned *dsl.URLSource and returns its
// content digest.
func (r *Resolver) SourceDigest(ctx context.Context, s dsl.Source) (digest.Digest, error) {
	u, ok := s.(*dsl.URLSource)
	if !ok {
		return "", fmt.Errorf("cannot resolve a source of type %T", s)
	}
	return r.once(ctx, "url "+u.URL, r.probe(u.URL))
}

func (r *Resolver) probe(url string) func(context.Context) (digest.Digest, error) {
	return func(ctx context.Context) (digest.Digest, error) { return fetch.Probe(ctx, url, r.download) }
}

// once returns the remembered answer for key, or runs resolve for it. A
// caller that asks while another's resolve of key is under way waits for
// that one and shares its outcome (made with the first caller's ctx, so
// when that ctx ended the resolve, a caller whose own has not asks again);
// it stops waiting when its own ctx ends.
func (r *Resolver) once(ctx context.Context, key string, resolve func(context.Context) (digest.Digest, error)) (digest.Digest, error) {
	for {
		d, err := r.resolveOnce(ctx, key, resolve)
		if !flight.CancelledElsewhere(ctx, err) {
			return d, err
		}
	}
}

func (r *Resolver) resolveOnce(ctx context.Context, key string, resolve func(context.Context) (digest.Digest, error)) (digest.Digest, error) {
	if d, ok := r.remembered(key); ok {
		return d, nil
	}
	ch := r.group.DoChan(key, func() (any, error) {
		if d, ok := r.remembered(key); ok {
			return d, nil // resolved between the lookup and DoChan
		}
		d, err := resolve(ctx)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.memo[key] = d
		r.mu.Unlock()
		return d, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(digest.Digest), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (r *Resolver) remembered(key string) (digest.Digest, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.memo[key]
	return d, ok
}

// pullOptions are the settings of pulling b: the build's registry options,
// made insecure when the definition asks for it.
func pullOptions(reg registry.Options, b *dsl.PullBase) fetch.PullOptions {
	// For the base's own registry only: a token server or a redirect
	// elsewhere stays verified. (A reference that does not parse fails
	// the pull itself.)
	if b.Insecure {
		if ref, err := registry.ParseReference(b.Ref, registry.Options{}); err == nil {
			reg.InsecureHosts = append(slices.Clip(reg.InsecureHosts), ref.Context().RegistryStr())
		}
	}
	return fetch.PullOptions{Registry: reg, Platform: b.Platform}
}
