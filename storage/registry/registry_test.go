package registry_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/strata-build/strata/internal/testregistry"
	strataregistry "github.com/strata-build/strata/storage/registry"
)

func TestInProcessRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, _ := random.Image(64, 1)
	ctx := context.Background()
	ref, err := strataregistry.ParseReference("docker://"+host+"/x:1", strataregistry.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := strataregistry.RemoteOptions(ctx, strataregistry.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
}

func TestAuthAndPrivateCA(t *testing.T) {
	r := testregistry.Start(t, testregistry.Options{TLS: true, Auth: true})
	ctx := context.Background()
	img, _ := random.Image(64, 1)
	ref, err := strataregistry.ParseReference(r.Addr+"/a/b:1", strataregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Without credentials the registry refuses.
	opts, _ := strataregistry.RemoteOptions(ctx, strataregistry.Options{CAFile: r.CAFile})
	if err := remote.Write(ref, img, opts...); err == nil {
		t.Fatal("anonymous push to an htpasswd registry succeeded")
	}
	// Credentials from flags.
	opts, _ = strataregistry.RemoteOptions(ctx, strataregistry.Options{CAFile: r.CAFile, Username: r.User, Password: r.Password})
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	// Credentials from the docker config.
	t.Setenv("DOCKER_CONFIG", r.DockerConfig(t, t.TempDir()))
	opts, _ = strataregistry.RemoteOptions(ctx, strataregistry.Options{CAFile: r.CAFile})
	if _, err := remote.Image(ref, opts...); err != nil {
		t.Fatalf("pull with the docker config's credentials: %v", err)
	}
	// An unverifiable certificate is refused unless Insecure.
	opts, _ = strataregistry.RemoteOptions(ctx, strataregistry.Options{})
	if _, err := remote.Image(ref, opts...); err == nil {
		t.Fatal("TLS with an unknown CA was accepted")
	}
	opts, _ = strataregistry.RemoteOptions(ctx, strataregistry.Options{Insecure: true})
	if _, err := remote.Image(ref, opts...); err != nil {
		t.Fatalf("Insecure pull: %v", err)
	}
	// Per host: only the registry named is exempt.
	opts, _ = strataregistry.RemoteOptions(ctx, strataregistry.Options{InsecureHosts: []string{"other.example:5000"}})
	if _, err := remote.Image(ref, opts...); err == nil {
		t.Fatal("TLS with an unknown CA was accepted for a registry not listed")
	}
	opts, _ = strataregistry.RemoteOptions(ctx, strataregistry.Options{InsecureHosts: []string{r.Addr}})
	if _, err := remote.Image(ref, opts...); err != nil {
		t.Fatalf("pull from a registry listed as insecure: %v", err)
	}
}

func TestInsecureHostsChooseTheScheme(t *testing.T) {
	o := strataregistry.Options{InsecureHosts: []string{"registry.internal:5000"}}
	for ref, scheme := range map[string]string{
		"registry.internal:5000/a:1": "http",
		"registry.example/a:1":       "https",
		"registry.example:5000/a":    "https",
	} {
		r, err := strataregistry.ParseReference(ref, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Scheme(); got != scheme {
			t.Errorf("%s: scheme %s, want %s", ref, got, scheme)
		}
		repo, err := strataregistry.ParseRepository(strings.SplitN(ref, ":1", 2)[0], o)
		if err != nil {
			t.Fatal(err)
		}
		if got := repo.Scheme(); got != scheme {
			t.Errorf("repository %s: scheme %s, want %s", ref, got, scheme)
		}
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":               "127.0.0.1:5000",
		"docker://Registry.Example/":   "registry.example",
		"https://registry.example:443": "registry.example:443",
		"docker.io":                    "index.docker.io",
	} {
		if got, err := strataregistry.RegistryHost(in); err != nil || got != want {
			t.Errorf("RegistryHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "registry.example/team", "http://"} {
		if _, err := strataregistry.RegistryHost(bad); err == nil {
			t.Errorf("RegistryHost(%q) accepted", bad)
		}
	}
}
