package main_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/testregistry"
)

// sourcesBuild runs strata in a testdata/sources package with its own
// store and layout; the driver cache is shared by these tests.
type sourcesBuild struct {
	dir, store, layout string
}

func newSourcesBuild(t *testing.T, pkg string) sourcesBuild {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "strata-sources-test-cache"))
	tmp := t.TempDir()
	return sourcesBuild{dir: repo(t, "cmd/strata/testdata/sources/"+pkg), store: filepath.Join(tmp, "store"), layout: filepath.Join(tmp, "oci")}
}

func (b sourcesBuild) args(cmd string, extra ...string) []string {
	return append([]string{cmd, "--store", b.store, "--layout", b.layout}, extra...)
}

// busyboxTar is a minimal rootfs: the host's static busybox and the
// applets the test definitions use.
func busyboxTar(t *testing.T, extra func(tw *tar.Writer)) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	for _, a := range []string{"sh", "cat", "ls", "mkdir", "chmod", "echo", "true", "printf"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	if extra != nil {
		extra(tw)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSourcesEndToEnd is the acceptance scenario: an image whose
// base is pulled by tag from a real registry (TLS with a private CA,
// htpasswd credentials from the docker config), which imports a checked
// URL and a file made by a build-only builder and reads build parameters,
// builds on a clean store; changing only a parameter rebuilds only the
// image that reads it; and the URL is not downloaded again.
func TestSourcesEndToEnd(t *testing.T) {
	needRoot(t)
	reg := testregistry.Start(t, testregistry.Options{TLS: true, Auth: true})
	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, filepath.Join(t.TempDir(), "docker")))

	// The base: a busybox rootfs pushed to the registry as base:1.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: reg.CertPool}}
	baseLayer := pushBusybox(t, reg.Addr+"/base:1", remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))

	var downloads atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/data.txt" {
			http.NotFound(w, r)
			return
		}
		downloads.Add(1)
		io.WriteString(w, "data from a URL\n")
	}))
	defer files.Close()
	paramsFile := filepath.Join(t.TempDir(), "params")
	os.WriteFile(paramsFile, []byte("# where the URL imports come from\nURLBASE="+files.URL+"\n"), 0o644)

	b := newSourcesBuild(t, "app")
	flags := []string{"--ca-file", reg.CAFile, "--params", paramsFile, "--set", "REGISTRY=" + reg.Addr}

	// A missing required parameter fails before any work, naming it and
	// the image that needs it.
	out, code := strata(t, b.dir, b.args("build", "--ca-file", reg.CAFile, "--params", paramsFile)...)
	if code == 0 || !strings.Contains(out, "build parameter REGISTRY is not set") || !strings.Contains(out, `image "app"`) {
		t.Fatalf("build without REGISTRY exited %d:\n%s", code, out)
	}
	if _, err := os.Stat(b.layout); err == nil {
		t.Error("a build missing a parameter wrote the layout")
	}

	out = mustStrata(t, b.dir, b.args("build", flags...)...)
	m, cfg := image(t, b.layout, "app")
	if len(m.Layers) != 2 || m.Layers[0].Digest.String() != baseLayer.String() {
		t.Fatalf("app layers %v: want the pulled base layer %s and its own", m.Layers, baseLayer)
	}
	if len(cfg.RootFS.DiffIDs) != 2 {
		t.Errorf("app config has %d diff IDs", len(cfg.RootFS.DiffIDs))
	}
	entries := layerEntries(t, b.layout, m.Layers[1])
	for _, want := range []string{"etc/data.txt", "usr/bin/tool", "greeting", "seen-during-run", "tool-output"} {
		if entries[want] == nil {
			t.Errorf("app layer lacks %s; has %v", want, keys(entries))
		}
	}
	for name := range entries {
		if strings.HasPrefix(name, ".strata") {
			t.Errorf("app layer holds %s: imports must never reach the image unless copied", name)
		}
	}
	if h := entries["usr/bin/tool"]; h != nil && h.Mode&0o777 != 0o755 {
		t.Errorf("/usr/bin/tool mode %o, want 755", h.Mode)
	}
	if downloads.Load() != 1 {
		t.Errorf("URL downloaded %d times, want 1", downloads.Load())
	}
	if _, code := strata(t, b.dir, "inspect", "--layout", b.layout, "tool"); code == 0 {
		t.Error("the build-only builder was tagged")
	}
	run := mustStrata(t, b.dir, "run", "--store", b.store, "--layout", b.layout, "app", "--", "/bin/cat", "/greeting", "/seen-during-run", "/tool-output", "/imports-list")
	for _, want := range []string{"hello\n", "data from a URL\n", "made by the builder\n", "data.txt\ntool\n"} {
		if !strings.Contains(run, want) {
			t.Errorf("app's files lack %q:\n%s", want, run)
		}
	}

	// Only the parameter changes: only app rebuilds; the URL comes from
	// the store.
	out = mustStrata(t, b.dir, b.args("build", append(flags, "--set", "GREETING=bonjour")...)...)
	for _, want := range []string{"app: building", "tool: cached", "other: cached", "busybox: cached"} {
		if !strings.Contains(out, want) {
			t.Errorf("rebuild after changing GREETING: no %q in\n%s", want, out)
		}
	}
	if downloads.Load() != 1 {
		t.Errorf("URL downloaded %d times after a rebuild, want 1 (pinned: reused from the store)", downloads.Load())
	}
	run = mustStrata(t, b.dir, "run", "--store", b.store, "--layout", b.layout, "app")
	if run != "bonjour\n" {
		t.Errorf("app prints %q after --set GREETING=bonjour", run)
	}
	// Nothing changed: everything is cached, with the registry asked only
	// for the tag's digest.
	out = mustStrata(t, b.dir, b.args("build", append(flags, "--set", "GREETING=bonjour")...)...)
	if !strings.Contains(out, "app: cached") {
		t.Errorf("unchanged rebuild:\n%s", out)
	}
}

// TestSourcesHostileTarball builds on rootfs tarballs that try to escape:
// one is refused naming its entry, the other's write through a symlink to
// a host folder lands inside the rootfs, and the host folder is untouched.
func TestSourcesHostileTarball(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	victim := filepath.Join(tmp, "victim")
	os.Mkdir(victim, 0o777)
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	escape := filepath.Join(tmp, "escape.tar.gz")
	os.WriteFile(escape, gz(busyboxTar(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "../../escaped", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	})), 0o644)
	sneaky := filepath.Join(tmp, "sneaky.tar.gz")
	os.WriteFile(sneaky, gz(busyboxTar(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: victim, Mode: 0o777})
		tw.WriteHeader(&tar.Header{Name: "evil/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6})
		tw.Write([]byte("inside"))
	})), 0o644)

	b := newSourcesBuild(t, "hostile")
	set := []string{"--set", "ESCAPE=" + escape, "--set", "SNEAKY=" + sneaky, "--set", "VICTIM=" + victim}
	out, code := strata(t, b.dir, b.args("build", append(set, "escape")...)...)
	if code == 0 || !strings.Contains(out, `"../../escaped"`) || !strings.Contains(out, "escape.tar.gz") {
		t.Errorf("build on a tarball with a ../ entry exited %d:\n%s", code, out)
	}
	out = mustStrata(t, b.dir, b.args("build", append(set, "sneaky")...)...)
	if !strings.Contains(out, "inside") {
		t.Errorf("the file written through the symlink is not in the rootfs:\n%s", out)
	}
	if left, _ := os.ReadDir(victim); len(left) != 0 {
		t.Errorf("the host folder the symlink names got %d entries", len(left))
	}
	for _, p := range []string{filepath.Join(filepath.Dir(b.store), "escaped"), filepath.Join(tmp, "escaped")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}

// TestSourcesBaseRecompressedBesideSteps: the gzip copy of a .tar.zst base
// that a tar+gzip image's manifest lists is made while the image's step
// runs (which waits for it, watching the store), not after it.
func TestSourcesBaseRecompressedBesideSteps(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("needs zstd")
	}
	tmp := t.TempDir()
	plain := filepath.Join(tmp, "rootfs.tar")
	raw := busyboxTar(t, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "bin/sleep", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	})
	if err := os.WriteFile(plain, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("zstd", "-q", plain, "-o", plain+".zst").CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v\n%s", err, out)
	}
	b := newSourcesBuild(t, "zstdearly")
	if err := os.MkdirAll(b.store, 0o755); err != nil { // the bind's source
		t.Fatal(err)
	}
	mustStrata(t, b.dir, b.args("build", "--set", "ROOTFS="+plain+".zst", "--set", "STORE="+b.store)...)
	m, _ := image(t, b.layout, "gzip")
	if len(m.Layers) != 2 || m.Layers[0].MediaType != v1.MediaTypeImageLayerGzip {
		t.Errorf("gzip's layers are %+v, want the base recompressed to gzip under its own", m.Layers)
	}
}

// TestSourcesImageWithoutSteps: an image with no steps, which starts no
// container, still has no layer of its own, its config, and its base
// unpacked in the store for the images that will run steps on it.
func TestSourcesImageWithoutSteps(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	rootfs := filepath.Join(tmp, "rootfs.tar")
	if err := os.WriteFile(rootfs, busyboxTar(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newSourcesBuild(t, "nosteps")
	out := mustStrata(t, b.dir, b.args("build", "--set", "ROOTFS="+rootfs)...)
	if !regexp.MustCompile(`(?m)^base +built .* empty$`).MatchString(out) {
		t.Errorf("the summary does not show base built with an empty layer:\n%s", out)
	}
	m, cfg := image(t, b.layout, "base")
	if len(m.Layers) != 1 || cfg.Config.Labels["stage"] != "base" {
		t.Errorf("base has layers %+v and labels %v, want the tarball's layer and stage=base", m.Layers, cfg.Config.Labels)
	}
	unpacked, _ := filepath.Glob(filepath.Join(b.store, "layers", "*", "bin", "busybox"))
	if len(unpacked) != 1 {
		t.Errorf("the store holds %d unpacked copies of the base's bin/busybox, want 1", len(unpacked))
	}
}

// TestSourcesZstdTarballBase builds on a .tar.zst rootfs: an image in the
// default layer type has gzip layers only (its base recompressed, with the
// tarball's diff ID), which umoci 0.4 reads; an image asking for zstd
// keeps the tarball as its base layer.
func TestSourcesZstdTarballBase(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("needs zstd")
	}
	raw := busyboxTar(t, nil)
	tmp := t.TempDir()
	plain := filepath.Join(tmp, "rootfs.tar")
	os.WriteFile(plain, raw, 0o644)
	if out, err := exec.Command("zstd", "-q", plain, "-o", plain+".zst").CombinedOutput(); err != nil {
		t.Fatalf("zstd: %v\n%s", err, out)
	}
	zst, err := os.ReadFile(plain + ".zst")
	if err != nil {
		t.Fatal(err)
	}
	b := newSourcesBuild(t, "zstdbase")
	set := []string{"--set", "ROOTFS=" + plain + ".zst"}
	mustStrata(t, b.dir, b.args("build", set...)...)

	m, cfg := image(t, b.layout, "gzip")
	if len(m.Layers) != 2 {
		t.Fatalf("gzip has layers %v", m.Layers)
	}
	for _, l := range m.Layers {
		if l.MediaType != v1.MediaTypeImageLayerGzip {
			t.Errorf("gzip has a layer of type %s", l.MediaType)
		}
	}
	if got, want := cfg.RootFS.DiffIDs[0], digest.FromBytes(raw); got != want {
		t.Errorf("base diff ID %s, want the tarball's %s", got, want)
	}
	if entries := layerEntries(t, b.layout, m.Layers[0]); entries["bin/busybox"] == nil {
		t.Errorf("recompressed base lacks bin/busybox: %v", keys(entries))
	}
	bundle := filepath.Join(tmp, "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", b.layout+":gzip", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	if hi, err := os.ReadFile(filepath.Join(bundle, "rootfs/hi")); err != nil || string(hi) != "hi\n" {
		t.Errorf("unpacked /hi = %q, %v", hi, err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/bin/busybox")); err != nil {
		t.Errorf("unpacked rootfs: %v", err)
	}

	zm, _ := image(t, b.layout, "zstd")
	if zm.Layers[0].Digest != digest.FromBytes(zst) || zm.Layers[0].MediaType != v1.MediaTypeImageLayerZstd {
		t.Errorf("zstd's base layer %+v, want the tarball %s itself", zm.Layers[0], digest.FromBytes(zst))
	}

	// Same tarball, fresh store: the same gzip image.
	again := newSourcesBuild(t, "zstdbase")
	mustStrata(t, again.dir, again.args("build", set...)...)
	if m2, _ := image(t, again.layout, "gzip"); m2.Layers[0].Digest != m.Layers[0].Digest {
		t.Errorf("recompressed base not reproducible: %s, then %s", m.Layers[0].Digest, m2.Layers[0].Digest)
	}
}

// pushBusybox pushes a one-layer image of busyboxTar as ref and returns
// its layer's digest.
func pushBusybox(t *testing.T, ref string, opts ...remote.Option) gcrv1.Hash {
	t.Helper()
	raw := busyboxTar(t, nil)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
