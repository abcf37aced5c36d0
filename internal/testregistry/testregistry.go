// Package testregistry starts Debian's docker-registry on 127.0.0.1 for
// tests that need a real registry server: plain HTTP, or TLS with a
// throw-away CA and htpasswd authentication.
package testregistry

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Registry is a running docker-registry.
type Registry struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// User and Password are set when the registry requires them.
	User, Password string
	// CAFile is the PEM of the CA that signed the server's certificate
	// (TLS registries only); CertPool holds it for Go clients.
	CAFile   string
	CertPool *x509.CertPool
	// Dir holds the config, the storage and the server log.
	Dir string
	cmd *exec.Cmd
	cfg string
}

// Options choose what the registry requires.
type Options struct {
	TLS  bool // serve HTTPS with a certificate for 127.0.0.1
	Auth bool // require htpasswd basic auth (user "strata")
}

// Start starts a registry and stops it when the test ends. It skips the
// test when docker-registry is not installed (go run mage.go deps).
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	r := &Registry{Dir: t.TempDir()}
	if err := r.configure(o); err != nil {
		t.Fatal(err)
	}
	if err := r.start(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (r *Registry) configure(o Options) error {
	addr, err := freePort()
	if err != nil {
		return err
	}
	r.Addr = addr
	var tlsCfg, authCfg string
	if o.TLS {
		if err := r.makeCert(); err != nil {
			return err
		}
		tlsCfg = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(r.Dir, "server.pem"), filepath.Join(r.Dir, "server.key"))
	}
	if o.Auth {
		r.User, r.Password = "strata", "s3cret-registry-pass"
		out, err := exec.Command("htpasswd", "-Bbn", r.User, r.Password).Output()
		if err != nil {
			return fmt.Errorf("htpasswd (apt-get install apache2-utils): %w", err)
		}
		if err := os.WriteFile(filepath.Join(r.Dir, "htpasswd"), out, 0o600); err != nil {
			return err
		}
		authCfg = fmt.Sprintf("auth:\n  htpasswd:\n    realm: strata-test\n    path: %s\n", filepath.Join(r.Dir, "htpasswd"))
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s%s`, filepath.Join(r.Dir, "data"), r.Addr, tlsCfg, authCfg)
	r.cfg = filepath.Join(r.Dir, "config.yml")
	return os.WriteFile(r.cfg, []byte(cfg), 0o644)
}

// makeCert writes a CA and a server certificate for 127.0.0.1 with
// openssl, which Debian always has.
func (r *Registry) makeCert() error {
	d := r.Dir
	run := func(args ...string) error {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	ext := filepath.Join(d, "san.ext")
	if err := os.WriteFile(ext, []byte("subjectAltName=IP:127.0.0.1,DNS:localhost\n"), 0o644); err != nil {
		return err
	}
	steps := [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=strata test CA", "-keyout", filepath.Join(d, "ca.key"), "-out", filepath.Join(d, "ca.pem")},
		{"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", filepath.Join(d, "server.key"), "-out", filepath.Join(d, "server.csr")},
		{"x509", "-req", "-in", filepath.Join(d, "server.csr"), "-CA", filepath.Join(d, "ca.pem"), "-CAkey", filepath.Join(d, "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", filepath.Join(d, "server.pem")},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	r.CAFile = filepath.Join(d, "ca.pem")
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		return err
	}
	r.CertPool = x509.NewCertPool()
	r.CertPool.AppendCertsFromPEM(pem)
	return nil
}

func (r *Registry) start(bin string) error {
	logf, err := os.Create(filepath.Join(r.Dir, "registry.log"))
	if err != nil {
		return err
	}
	r.cmd = exec.Command(bin, "serve", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.CertPool}}}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			return nil // 200, or 401 when auth is on: either way it serves
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(r.Dir, "registry.log"))
	r.Stop()
	return fmt.Errorf("docker-registry did not start on %s:\n%s", r.Addr, log)
}

// URL is the registry's base URL (http or https).
func (r *Registry) URL() string {
	if r.CertPool != nil {
		return "https://" + r.Addr
	}
	return "http://" + r.Addr
}

// Stop kills the registry (a test of a registry dying mid-push calls it
// early); it is safe to call twice.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Restart starts the registry again on the same address with the same
// storage, for retry tests.
func (r *Registry) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	bin, _ := exec.LookPath("docker-registry")
	if err := r.start(bin); err != nil {
		t.Fatal(err)
	}
}

// DockerConfig writes a docker config.json with the registry's
// credentials into dir and returns dir, for DOCKER_CONFIG.
func (r *Registry) DockerConfig(t testing.TB, dir string) string {
	t.Helper()
	auth := basicAuth(r.User, r.Password)
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.Addr, auth)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
