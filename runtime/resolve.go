package runtime

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/registry"
)

// Resolver is the dsl.Resolver of strata builds: it asks a registry which
// digest a base's tag points at (one HEAD request per tag and build) and
// downloads the URLs no digest pins into the download cache, where the
// build then finds them. Each answer is remembered, so images sharing a
// base or a URL agree on its digest within one evaluation.
type Resolver struct {
	registry registry.Options
	download fetch.DownloadOptions

	mu   sync.Mutex
	memo map[string]digest.Digest
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
		return r.once("pull "+b.Ref, func() (digest.Digest, error) {
			return fetch.Resolve(ctx, b.Ref, pullOptions(r.registry, b))
		})
	case *dsl.TarballBase:
		if b.URL == "" {
			return "", fmt.Errorf("tarball %s: nothing to resolve for a local file", b.Path)
		}
		return r.once("url "+b.URL, func() (digest.Digest, error) { return fetch.Probe(ctx, b.URL, r.download) })
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
	return r.once("url "+u.URL, func() (digest.Digest, error) { return fetch.Probe(ctx, u.URL, r.download) })
}

func (r *Resolver) once(key string, f func() (digest.Digest, error)) (digest.Digest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.memo[key]; ok {
		return d, nil
	}
	d, err := f()
	if err != nil {
		return "", err
	}
	r.memo[key] = d
	return d, nil
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
