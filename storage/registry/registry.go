// Package registry holds what every registry call of strata shares: how a
// reference is parsed, where credentials come from, and when plain HTTP or
// unverified TLS is allowed. Pulls (bases), pushes (publish) and the
// registry build cache all go through it, so they authenticate alike.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options are the per-registry settings of a call.
type Options struct {
	// Insecure allows plain HTTP and TLS certificates that cannot be
	// verified. strata never does either unless the definition or a flag
	// asks for it.
	Insecure bool
	// Username and Password, when set, win over every stored credential.
	Username, Password string
	// CAFile adds a PEM certificate authority to the system's, for a
	// registry with a private CA.
	CAFile string
	// UserAgent identifies strata to the registry.
	UserAgent string
}

// ParseReference parses "docker://host/repo:tag", "host/repo@sha256:..."
// and the other forms the docker CLI accepts.
func ParseReference(ref string, o Options) (name.Reference, error) {
	ref = strings.TrimPrefix(ref, "docker://")
	var opts []name.Option
	if o.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	return r, nil
}

// ParseRepository parses "host/prefix" for publish --to and the cache.
func ParseRepository(repo string, o Options) (name.Repository, error) {
	repo = strings.TrimPrefix(repo, "docker://")
	var opts []name.Option
	if o.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(repo, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", repo, err)
	}
	return r, nil
}

// RemoteOptions returns the go-containerregistry options of a call:
// credentials (flags, then the docker config in ~/.docker/config.json or
// $DOCKER_CONFIG, then the containers auth file), the transport and ctx.
func RemoteOptions(ctx context.Context, o Options) ([]remote.Option, error) {
	var keychain authn.Keychain = authn.DefaultKeychain
	if o.Username != "" || o.Password != "" {
		keychain = authn.NewMultiKeychain(staticKeychain{authn.FromConfig(authn.AuthConfig{Username: o.Username, Password: o.Password})}, authn.DefaultKeychain)
	}
	tr, err := transport(o)
	if err != nil {
		return nil, err
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "strata"
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithTransport(tr),
		remote.WithUserAgent(ua),
	}, nil
}

// Transport is the HTTP transport of o (CA, TLS verification), for callers
// that wrap it before handing it to remote.WithTransport.
func Transport(o Options) (http.RoundTripper, error) { return transport(o) }

func transport(o Options) (http.RoundTripper, error) {
	base := remote.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("registry CA: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("registry CA %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.Insecure {
		cfg.InsecureSkipVerify = true
	}
	base.TLSClientConfig = cfg
	return base, nil
}

// staticKeychain answers every registry with the same credentials: those
// given on the command line for this call.
type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }
