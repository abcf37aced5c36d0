package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/testregistry"
)

// helloBuild is a temporary store and layout for examples/hello, with the
// driver cache kept out of $HOME.
type helloBuild struct {
	dir, store, layout string
}

func newHelloBuild(t *testing.T, name string) helloBuild {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "strata-publish-test-cache"))
	return helloBuild{dir: repo(t, "examples/hello"), store: filepath.Join(tmp, name+"-store"), layout: filepath.Join(tmp, name+"-oci")}
}

func (h helloBuild) flags(extra ...string) []string {
	return append([]string{"--store", h.store, "--layout", h.layout}, extra...)
}

// layoutDigest is the manifest digest tagged tag in layout.
func layoutDigest(t *testing.T, layout, tag string) string {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return m.Digest
		}
	}
	t.Fatalf("no tag %q in %s", tag, layout)
	return ""
}

// skopeoInspect runs skopeo inspect (--config when config) and decodes it.
func skopeoInspect(t *testing.T, ref string, config bool, args ...string) map[string]any {
	t.Helper()
	argv := append([]string{"inspect"}, args...)
	if config {
		argv = append(argv, "--config")
	}
	out, err := exec.Command("skopeo", append(argv, ref)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", argv, err, out)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return v
}

// TestPublishAndRegistryCache is the definition of done: examples
// built with --cache-to in one store and --cache-from in a clean one run no
// step the second time and give identical digests; strata publish followed
// by skopeo inspect shows the config defined in Go.
func TestPublishAndRegistryCache(t *testing.T) {
	needRoot(t)
	reg := testregistry.Start(t, testregistry.Options{})
	first := newHelloBuild(t, "first")
	cache := reg.Addr + "/strata/cache"

	out := mustStrata(t, first.dir, append([]string{"build", "--cache-to", cache, "--insecure"}, first.flags()...)...)
	for _, want := range []string{"hello | + echo built", "hello: pushed to registry cache " + cache, "IMAGE", "LAYER"} {
		if !strings.Contains(out, want) {
			t.Errorf("build --cache-to output lacks %q:\n%s", want, out)
		}
	}

	// A clean store on the same machine: every layer comes from the cache.
	second := newHelloBuild(t, "second")
	out = mustStrata(t, second.dir, append([]string{"build", "--cache-from", cache, "--insecure-registry", reg.Addr}, second.flags()...)...)
	if strings.Contains(out, " | ") || strings.Contains(out, "building") {
		t.Errorf("build --cache-from ran a step:\n%s", out)
	}
	for _, want := range []string{"busybox: pulled from registry cache", "hello: pulled from registry cache", "2 cached"} {
		if !strings.Contains(out, want) {
			t.Errorf("build --cache-from output lacks %q:\n%s", want, out)
		}
	}
	for _, tag := range []string{"busybox", "hello"} {
		if a, b := layoutDigest(t, first.layout, tag), layoutDigest(t, second.layout, tag); a != b {
			t.Errorf("%s: digest %s from the cache, %s built", tag, b, a)
		}
	}
	// The store built from the cache is a real store: runs work and the
	// next build is cached locally.
	if run := mustStrata(t, second.dir, "run", "--store", second.store, "--layout", second.layout, "hello"); !strings.Contains(run, "Hello from an image defined in Go!") {
		t.Errorf("strata run of the image from the cache printed:\n%s", run)
	}
	if out := mustStrata(t, second.dir, append([]string{"build"}, second.flags()...)...); !strings.Contains(out, "2 cached") {
		t.Errorf("rebuild after --cache-from:\n%s", out)
	}

	// The record carries no host path and no key document.
	rec, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+cache+":"+cacheTag(t, second.store, "hello")).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect of the cache record: %v\n%s", err, rec)
	}
	if !strings.Contains(string(rec), "application/vnd.strata.cache.record.v1+json") || strings.Contains(string(rec), first.store) {
		t.Errorf("cache record manifest:\n%s", rec)
	}

	// Publish, read back with skopeo, compare digests.
	prefix := reg.Addr + "/team"
	dry := mustStrata(t, first.dir, append([]string{"publish", "--to", prefix, "--insecure", "--dry-run"}, first.flags()...)...)
	if !strings.Contains(dry, prefix+"/hello:latest") || !strings.Contains(dry, "dry run") {
		t.Errorf("dry run printed:\n%s", dry)
	}
	if _, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+prefix+"/hello:latest").CombinedOutput(); err == nil {
		t.Error("--dry-run pushed hello")
	}
	// Plain HTTP only when asked, even on the loopback address.
	if out, code := strata(t, first.dir, append([]string{"publish", "--to", prefix}, first.flags()...)...); code == 0 || !strings.Contains(out, "plain HTTP is not allowed") || !strings.Contains(out, "--insecure-registry") {
		t.Errorf("publish to a plain-HTTP registry without --insecure-registry: exit %d\n%s", code, out)
	}
	out = mustStrata(t, first.dir, append([]string{"publish", "--to", prefix, "--insecure-registry", reg.Addr, "--tag", "latest", "--tag", "v1"}, first.flags()...)...)
	want := layoutDigest(t, first.layout, "hello")
	for _, tag := range []string{"latest", "v1"} {
		got := skopeoInspect(t, "docker://"+prefix+"/hello:"+tag, false, "--tls-verify=false")
		if got["Digest"] != want {
			t.Errorf("hello:%s in the registry is %v, the layout has %s", tag, got["Digest"], want)
		}
	}
	cfg := skopeoInspect(t, "docker://"+prefix+"/hello:latest", true, "--tls-verify=false")
	if c, _ := json.Marshal(cfg["config"]); !strings.Contains(string(c), "GREETING=hi") || !strings.Contains(string(c), "/etc/greeting") {
		t.Errorf("config in the registry: %s", c)
	}
	// busybox went first; hello's copy of its layer was mounted, not sent.
	if !strings.Contains(out, "hello: published "+prefix+"/hello:latest "+want) {
		t.Errorf("publish output:\n%s", out)
	}
	// hello sends its own small layer, config and manifest: far less
	// than busybox's layer of about 1 MB.
	if n := uploaded(t, out, "hello: published "+prefix+"/hello:latest "+want); n >= 100<<10 {
		t.Errorf("hello uploaded %.0f bytes, re-uploading busybox's layer instead of mounting it:\n%s", n, out)
	}
	out = mustStrata(t, first.dir, append([]string{"publish", "--to", prefix, "--insecure"}, first.flags()...)...)
	if strings.Count(out, "(0 B uploaded)") != 2 {
		t.Errorf("publishing again uploaded something:\n%s", out)
	}
	archive := filepath.Join(t.TempDir(), "hello.tar")
	if cp, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+prefix+"/hello:latest", "docker-archive:"+archive+":strata/hello:latest").CombinedOutput(); err != nil {
		t.Errorf("skopeo copy to docker-archive: %v\n%s", err, cp)
	}
}

// cacheTag returns the registry cache tag of the image name committed in
// store, from its record.
func cacheTag(t *testing.T, store, name string) string {
	t.Helper()
	var rec struct{ Key string }
	b, err := os.ReadFile(filepath.Join(store, "cache", "last", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return "strata-cache-" + strings.TrimPrefix(rec.Key, "sha256:")
}

func TestPublishNotBuiltOrStale(t *testing.T) {
	needRoot(t)
	reg := testregistry.Start(t, testregistry.Options{})
	h := newHelloBuild(t, "stale")
	out, code := strata(t, h.dir, append([]string{"publish", "--to", reg.Addr + "/p", "--insecure", "hello"}, h.flags()...)...)
	if code == 0 || !strings.Contains(out, `image "hello" is not built`) || !strings.Contains(out, "--build") {
		t.Errorf("publish of an unbuilt image exited %d:\n%s", code, out)
	}
	mustStrata(t, h.dir, append([]string{"build"}, h.flags()...)...)
	// The epoch is part of every key: the built images are now stale.
	t.Setenv("SOURCE_DATE_EPOCH", "1000")
	out, code = strata(t, h.dir, append([]string{"publish", "--to", reg.Addr + "/p", "--insecure", "hello"}, h.flags()...)...)
	if code == 0 || !strings.Contains(out, `image "hello" is stale against its definition`) {
		t.Errorf("publish of a stale image exited %d:\n%s", code, out)
	}
	out = mustStrata(t, h.dir, append([]string{"publish", "--to", reg.Addr + "/p", "--insecure", "--build", "hello"}, h.flags()...)...)
	if !strings.Contains(out, "hello | + echo built") {
		t.Errorf("publish --build did not build:\n%s", out)
	}
	if got := skopeoInspect(t, "docker://"+reg.Addr+"/p/hello:latest", false, "--tls-verify=false"); got["Digest"] != layoutDigest(t, h.layout, "hello") {
		t.Errorf("published %v, built %s", got["Digest"], layoutDigest(t, h.layout, "hello"))
	}
	out, code = strata(t, h.dir, append([]string{"publish", "--insecure"}, h.flags()...)...)
	if code != 2 || !strings.Contains(out, "--to") {
		t.Errorf("publish without --to exited %d:\n%s", code, out)
	}
}

// TestPublishWithAuth uses a TLS registry with a private CA and htpasswd:
// credentials come from the docker config or --creds, and the cache works
// through the same registry settings.
func TestPublishWithAuth(t *testing.T) {
	needRoot(t)
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Auth: true})
	h := newHelloBuild(t, "auth")
	prefix := reg.Addr + "/secure"
	mustStrata(t, h.dir, append([]string{"build"}, h.flags()...)...)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials
	out, code := strata(t, h.dir, append([]string{"publish", "--to", prefix, "--ca-file", reg.CAFile, "hello"}, h.flags()...)...)
	if code == 0 || !strings.Contains(out, `publish image "busybox"`) && !strings.Contains(out, `publish image "hello"`) {
		t.Errorf("anonymous publish exited %d:\n%s", code, out)
	}
	out, code = strata(t, h.dir, append([]string{"publish", "--to", prefix, "hello"}, h.flags()...)...)
	if code == 0 || !strings.Contains(out, "certificate") {
		t.Errorf("publish to a registry with an unknown CA exited %d:\n%s", code, out)
	}
	mustStrata(t, h.dir, append([]string{"publish", "--to", prefix, "--ca-file", reg.CAFile, "--creds", reg.User + ":" + reg.Password, "hello"}, h.flags()...)...)

	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, t.TempDir()))
	mustStrata(t, h.dir, append([]string{"publish", "--to", prefix, "--ca-file", reg.CAFile, "--tag", "v2", "hello"}, h.flags()...)...)
	want := layoutDigest(t, h.layout, "hello")
	for _, tag := range []string{"latest", "v2"} {
		got := skopeoInspect(t, "docker://"+prefix+"/hello:"+tag, false, "--cert-dir", certDir(t, reg.CAFile), "--creds", reg.User+":"+reg.Password)
		if got["Digest"] != want {
			t.Errorf("hello:%s is %v, want %s", tag, got["Digest"], want)
		}
	}

	// The build cache through the same registry and credentials.
	cache := reg.Addr + "/secure/cache"
	mustStrata(t, h.dir, append([]string{"build", "--cache-to", cache, "--ca-file", reg.CAFile}, h.flags()...)...)
	clean := newHelloBuild(t, "auth-clean")
	out = mustStrata(t, clean.dir, append([]string{"build", "--cache-from", cache, "--ca-file", reg.CAFile}, clean.flags()...)...)
	if strings.Contains(out, " | ") || layoutDigest(t, clean.layout, "hello") != want {
		t.Errorf("build from the authenticated cache:\n%s", out)
	}
}

// certDir makes a folder holding the CA, as skopeo's --cert-dir wants it.
func certDir(t *testing.T, ca string) string {
	t.Helper()
	d := t.TempDir()
	b, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "ca.crt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRegistryCacheFallsBack: an unreachable cache and a corrupt blob in
// a cache both make the build run its steps with a warning, never fail.
func TestRegistryCacheFallsBack(t *testing.T) {
	needRoot(t)
	h := newHelloBuild(t, "down")
	// Nothing listens on port 1 of the loopback.
	out := mustStrata(t, h.dir, append([]string{"build", "--cache-from", "127.0.0.1:1/nothing", "--insecure"}, h.flags()...)...)
	if !strings.Contains(out, "warning: registry cache 127.0.0.1:1/nothing is not usable") || !strings.Contains(out, "hello | + echo built") {
		t.Errorf("build with an unreachable cache:\n%s", out)
	}
	if strings.Count(out, "warning: registry cache") != 1 {
		t.Errorf("the unreachable cache was reported more than once:\n%s", out)
	}

	reg := testregistry.Start(t, testregistry.Options{})
	cache := reg.Addr + "/c"
	mustStrata(t, h.dir, append([]string{"build", "--cache-to", cache, "--insecure"}, h.flags()...)...)
	// Damage busybox's layer in the registry's own storage.
	var rec struct {
		Layers []struct{ Descriptor struct{ Digest string } }
	}
	b, err := os.ReadFile(filepath.Join(h.store, "cache", "last", "busybox.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil || len(rec.Layers) == 0 {
		t.Fatalf("busybox record: %v %s", err, b)
	}
	hex := strings.TrimPrefix(rec.Layers[0].Descriptor.Digest, "sha256:")
	data := filepath.Join(reg.Dir, "data", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
	if err := os.WriteFile(data, []byte("not a layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	clean := newHelloBuild(t, "corrupt")
	out = mustStrata(t, clean.dir, append([]string{"build", "--cache-from", cache, "--insecure"}, clean.flags()...)...)
	if !strings.Contains(out, "warning: busybox: registry cache") || !strings.Contains(out, "busybox: building") {
		t.Errorf("build with a corrupt cache entry:\n%s", out)
	}
	if a, b := layoutDigest(t, h.layout, "hello"), layoutDigest(t, clean.layout, "hello"); a != b {
		t.Errorf("hello is %s after falling back, %s before", b, a)
	}
}

// TestPublishRegistryDiesMidPush kills the registry as the first blob
// upload starts: publish fails naming the image and the destination, and
// the same command succeeds once the registry is back.
func TestPublishRegistryDiesMidPush(t *testing.T) {
	needRoot(t)
	reg := testregistry.Start(t, testregistry.Options{})
	h := newHelloBuild(t, "dies")
	mustStrata(t, h.dir, append([]string{"build"}, h.flags()...)...)

	target, _ := url.Parse(reg.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the failures are the point
	var once sync.Once
	var killed bool
	var mu sync.Mutex
	front := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
			once.Do(func() {
				reg.Stop()
				mu.Lock()
				killed = true
				mu.Unlock()
			})
		}
		proxy.ServeHTTP(w, r)
	})}
	addr := listen(t, front)
	prefix := addr + "/p"

	out, code := strata(t, h.dir, append([]string{"publish", "--to", prefix, "--insecure"}, h.flags()...)...)
	mu.Lock()
	wasKilled := killed
	mu.Unlock()
	if !wasKilled {
		t.Fatalf("no blob was uploaded:\n%s", out)
	}
	if code == 0 || !strings.Contains(out, `publish image "busybox" to `+prefix+"/busybox:latest") || !strings.Contains(out, "running the same command again") {
		t.Errorf("publish to a dying registry exited %d:\n%s", code, out)
	}
	reg.Restart(t)
	mustStrata(t, h.dir, append([]string{"publish", "--to", prefix, "--insecure"}, h.flags()...)...)
	got := skopeoInspect(t, "docker://"+prefix+"/hello:latest", false, "--tls-verify=false")
	if got["Digest"] != layoutDigest(t, h.layout, "hello") {
		t.Errorf("after the retry hello is %v, want %s", got["Digest"], layoutDigest(t, h.layout, "hello"))
	}
}

// TestPublishToLayoutReadByTools publishes tar and squashfs images into a
// local layout and reads it with umoci, skopeo and podman.
func TestPublishToLayoutReadByTools(t *testing.T) {
	needRoot(t)
	h := newHelloBuild(t, "tools")
	dest := filepath.Join(t.TempDir(), "published")
	types := []string{"--layer-type", "tar+gzip", "--layer-type", "squashfs"}
	mustStrata(t, h.dir, append(append([]string{"build"}, types...), h.flags()...)...)
	out := mustStrata(t, h.dir, append(append([]string{"publish", "--to", "oci:" + dest, "--tag", "1.0", "hello"}, types...), h.flags()...)...)
	if !strings.Contains(out, "hello:1.0-squashfs") {
		t.Errorf("publish did not tag the squashfs image:\n%s", out)
	}
	if layoutDigest(t, dest, "hello:1.0") != layoutDigest(t, h.layout, "hello") || layoutDigest(t, dest, "hello:1.0-squashfs") != layoutDigest(t, h.layout, "hello-squashfs") {
		t.Error("published digests differ from the built ones")
	}
	cfg := skopeoInspect(t, "oci:"+dest+":hello:1.0", true)
	if c, _ := json.Marshal(cfg["config"]); !strings.Contains(string(c), "GREETING=hi") {
		t.Errorf("skopeo reads config %s", c)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	if um, err := exec.Command("umoci", "unpack", "--image", dest+":hello:1.0", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, um)
	}
	if b, err := os.ReadFile(filepath.Join(bundle, "rootfs", "etc", "greeting")); err != nil || !strings.Contains(string(b), "Hello") {
		t.Errorf("unpacked greeting %q, %v", b, err)
	}
	archive := filepath.Join(t.TempDir(), "hello.tar")
	if cp, err := exec.Command("skopeo", "copy", "oci:"+dest+":hello:1.0", "docker-archive:"+archive+":localhost/strata-hello:e2e").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, cp)
	}
	// A subtest, so that a machine where podman cannot run containers
	// skips only that part and the checks above still count as passed.
	t.Run("podman", func(t *testing.T) { podmanRun(t, archive, "localhost/strata-hello:e2e") })
}

// podmanRun loads archive into podman and runs it. Loading and reading
// the config back must work; running a container is skipped, with
// podman's own words, where the machine does not allow it.
func podmanRun(t *testing.T, archive, image string) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (apt-get install podman)")
	}
	global := []string{"--cgroup-manager=cgroupfs", "--events-backend=file"}
	// crun, podman's default runtime, refuses this machine's hybrid cgroup
	// setup; runc runs the container.
	if _, err := exec.LookPath("runc"); err == nil {
		global = append(global, "--runtime", "runc")
	}
	pod := func(args ...string) ([]byte, error) {
		return exec.Command("podman", append(global, args...)...).CombinedOutput()
	}
	if out, err := pod("load", "-i", archive); err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	t.Cleanup(func() { pod("rmi", "-f", image) })
	out, err := pod("image", "inspect", "--format", "{{json .Config.Env}}", image)
	if err != nil || !strings.Contains(string(out), "GREETING=hi") {
		t.Errorf("podman image inspect: %v\n%s", err, out)
	}
	// Limits at or below the machine's own: podman's defaults for root
	// are above what a process without CAP_SYS_RESOURCE may set.
	out, err = pod("run", "--rm", "--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", image)
	if err != nil {
		t.Skipf("podman cannot run containers on this machine: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), "Hello from an image defined in Go!") {
		t.Errorf("podman run printed:\n%s", out)
	}
}

// listen serves srv on a free loopback port until the test ends.
func listen(t *testing.T, srv *http.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// TestProgressOnTerminal runs a build on a pseudo-terminal: the live
// display redraws its lines in place and the summary table follows; the
// step's output is kept in the store's log either way.
func TestProgressOnTerminal(t *testing.T) {
	needRoot(t)
	h := newHelloBuild(t, "tty")
	master, slave := openPTY(t)
	cmd := exec.Command(strataBin, append([]string{"build"}, h.flags()...)...)
	cmd.Dir = h.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&screen, master)
		close(copied)
	}()
	if err := cmd.Run(); err != nil {
		t.Fatalf("build on a terminal: %v", err)
	}
	slave.Close()
	<-copied
	out := screen.String()
	for _, want := range []string{"\x1b[", "hello", "built", "IMAGE", "2 built"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, out)
		}
	}
	logText, err := os.ReadFile(filepath.Join(h.store, "logs", "hello.log"))
	if err != nil || !strings.Contains(string(logText), "+ echo built") || !strings.Contains(string(logText), "hello built") {
		t.Errorf("hello's build log: %v\n%s", err, logText)
	}
	// --progress=plain on the same terminal prints no escape sequences.
	master2, slave2 := openPTY(t)
	cmd = exec.Command(strataBin, append([]string{"build", "--progress=plain"}, h.flags()...)...)
	cmd.Dir = h.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave2, slave2, slave2
	screen.Reset()
	copied = make(chan struct{})
	go func() {
		io.Copy(&screen, master2)
		close(copied)
	}()
	if err := cmd.Run(); err != nil {
		t.Fatalf("plain build on a terminal: %v", err)
	}
	slave2.Close()
	<-copied
	if strings.Contains(screen.String(), "\x1b[") || !strings.Contains(screen.String(), "hello: cached") {
		t.Errorf("--progress=plain output:\n%q", screen.String())
	}
}

// openPTY opens a pseudo-terminal pair with /dev/ptmx.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestPublishWithoutBuildBuildsNothing: without --build, publish sends
// what the store holds and builds nothing, not even a build-only image
// the published one imports from, whose record is gone; images that are
// not built, or would be rebuilt, are refused by name with --build named.
func TestPublishWithoutBuildBuildsNothing(t *testing.T) {
	needRoot(t)
	h := newHelloBuild(t, "nobuild")
	h.dir = repo(t, "cmd/strata/testdata/publish")
	dest := "oci:" + filepath.Join(t.TempDir(), "published")

	out, code := strata(t, h.dir, append([]string{"publish", "--to", dest}, h.flags()...)...)
	if code == 0 || !strings.Contains(out, `image "app" is not built`) || !strings.Contains(out, "--build") || strings.Contains(out, "built in") {
		t.Errorf("publish before any build exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(h.store); err == nil {
		t.Errorf("publish without --build made a store")
	}

	mustStrata(t, h.dir, append([]string{"build"}, h.flags()...)...)
	// The build-only image's record goes: a build would run its step.
	var rec struct{ Key string }
	b, err := os.ReadFile(filepath.Join(h.store, "cache", "last", "tool.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	toolRecord := filepath.Join(h.store, "cache", strings.TrimPrefix(rec.Key, "sha256:")+".json")
	if err := os.Remove(toolRecord); err != nil {
		t.Fatal(err)
	}

	out = mustStrata(t, h.dir, append([]string{"publish", "--to", dest}, h.flags()...)...)
	if strings.Contains(out, "built") || strings.Contains(out, "building") || strings.Contains(out, "tool") {
		t.Errorf("publish without --build built something:\n%s", out)
	}
	if !strings.Contains(out, "app: published app:latest") {
		t.Errorf("publish output:\n%s", out)
	}
	if _, err := os.Stat(toolRecord); err == nil {
		t.Error("publish without --build rebuilt the build-only tool")
	}
	destDir := strings.TrimPrefix(dest, "oci:")
	if layoutDigest(t, destDir, "app:latest") != layoutDigest(t, h.layout, "app") {
		t.Error("published app differs from the built one")
	}

	// --no-cache would rebuild: refused without --build.
	out, code = strata(t, h.dir, append([]string{"publish", "--to", dest, "--no-cache"}, h.flags()...)...)
	if code != 2 || !strings.Contains(out, "--build") || strings.Contains(out, "built") {
		t.Errorf("publish --no-cache without --build exited %d:\n%s", code, out)
	}
	// A layer type the store does not hold would be encoded: refused too.
	out, code = strata(t, h.dir, append([]string{"publish", "--to", dest, "--layer-type", "tar+zstd"}, h.flags()...)...)
	if code == 0 || !strings.Contains(out, `image "app" is built, but not as tar+zstd`) || strings.Contains(out, "encoded") {
		t.Errorf("publish of a layer type not built exited %d:\n%s", code, out)
	}
}

// uploaded reads how many bytes the publish output's line that starts
// with prefix says were uploaded: "PREFIX (12.3 KiB uploaded)", to a
// tenth of the unit.
func uploaded(t *testing.T, out, prefix string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + ` \(([0-9.]+) (B|KiB|MiB|GiB) uploaded\)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line %q (N UNIT uploaded):\n%s", prefix, out)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m[2]]
}
