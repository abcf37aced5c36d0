// Package registry holds what every registry call of strata shares: how a
// reference is parsed, where credentials come from, and when plain HTTP or
// unverified TLS is allowed. Pulls (bases), pushes (publish) and the
// registry build cache all go through it, so they authenticate alike.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
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
	// InsecureHosts allow the same for these registries only ("host" or
	// "host:port", as written in references).
	InsecureHosts []string
	// Username and Password, when set, win over every stored credential.
	Username, Password string
	// CAFile adds a PEM certificate authority to the system's, for a
	// registry with a private CA.
	CAFile string
	// UserAgent identifies strata to the registry.
	UserAgent string
}

// RegistryHost turns what a user wrote for a registry ("127.0.0.1:5000",
// "docker://Registry.example/", "docker.io") into the host[:port] that
// references resolve to, so that --insecure-registry values match.
func RegistryHost(v string) (string, error) {
	h := v
	for _, p := range []string{"docker://", "https://", "http://"} {
		h = strings.TrimPrefix(h, p)
	}
	h = strings.TrimSuffix(h, "/")
	if h == "" || strings.Contains(h, "/") {
		return "", fmt.Errorf("registry %q: want HOST or HOST:PORT", v)
	}
	r, err := name.NewRegistry(strings.ToLower(h))
	if err != nil {
		return "", fmt.Errorf("registry %q: %w", v, err)
	}
	return r.RegistryStr(), nil
}

// InsecureFor reports whether plain HTTP and unverified TLS are allowed
// for the registry at host ("host:port" when it has a port).
func (o Options) InsecureFor(host string) bool {
	return o.Insecure || slices.Contains(o.InsecureHosts, host)
}

// ParseReference parses "docker://host/repo:tag", "host/repo@sha256:..."
// and the other forms the docker CLI accepts.
func ParseReference(ref string, o Options) (name.Reference, error) {
	ref = strings.TrimPrefix(ref, "docker://")
	r, err := name.ParseReference(ref)
	if err == nil && o.InsecureFor(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref, name.Insecure)
	}
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	return r, nil
}

// ParseRepository parses "host/prefix" for publish --to and the cache.
func ParseRepository(repo string, o Options) (name.Repository, error) {
	repo = strings.TrimPrefix(repo, "docker://")
	r, err := name.NewRepository(repo)
	if err == nil && o.InsecureFor(r.RegistryStr()) {
		r, err = name.NewRepository(repo, name.Insecure)
	}
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

// ErrPlainHTTP is returned (wrapped) when a registry speaks only plain
// HTTP and the call was not allowed to use it.
var ErrPlainHTTP = errors.New("plain HTTP is not allowed for this registry: allow it with --insecure-registry HOST[:PORT] (or dsl.Insecure() on a Pull base)")

// transport is the HTTP transport of o: the system's CAs and CAFile, and
// plain HTTP or unverified TLS only for the registries o allows them.
func transport(o Options) (http.RoundTripper, error) {
	base := remote.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.Insecure}
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
	base.TLSClientConfig = cfg
	if o.Insecure {
		return base, nil
	}
	p := hostPolicy{verified: base, o: o}
	if len(o.InsecureHosts) > 0 {
		lax := base.Clone()
		lax.TLSClientConfig = cfg.Clone()
		lax.TLSClientConfig.InsecureSkipVerify = true
		p.unverified = lax
	}
	return p, nil
}

// hostPolicy applies Options per request host. It refuses plain HTTP to a
// registry not marked insecure (go-containerregistry falls back to HTTP
// for loopback and private addresses on its own, and strata must not
// without being asked), and skips TLS verification only for the hosts of
// Options.InsecureHosts: a token server elsewhere stays verified.
type hostPolicy struct {
	verified, unverified http.RoundTripper // unverified: nil without InsecureHosts
	o                    Options
}

func (p hostPolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	if !p.o.InsecureFor(req.URL.Host) {
		if req.URL.Scheme != "https" {
			return nil, fmt.Errorf("%s: %w", req.URL.Host, ErrPlainHTTP)
		}
		return p.verified.RoundTrip(req)
	}
	return p.unverified.RoundTrip(req)
}

// staticKeychain answers every registry with the same credentials: those
// given on the command line for this call.
type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }
