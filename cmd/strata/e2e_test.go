package main_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

var strataBin string

func TestMain(m *testing.M) {
	if bin := os.Getenv("STRATA_TEST_BIN"); bin != "" {
		// The rootless suite (rootless_test.go) runs this binary as an
		// unprivileged user, with a strata it built.
		strataBin = bin
		os.Exit(m.Run())
	}
	// Tests give strata a fresh XDG_CACHE_HOME so that each compiles its
	// own driver; pinning the Go caches keeps those compiles warm instead of
	// rebuilding the standard library every time.
	if out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output(); err == nil {
		if caches := strings.Fields(string(out)); len(caches) == 2 {
			os.Setenv("GOCACHE", caches[0])
			os.Setenv("GOMODCACHE", caches[1])
		}
	}
	dir, err := os.MkdirTemp("", "strata-e2e-")
	if err != nil {
		panic(err)
	}
	strataBin = filepath.Join(dir, "strata")
	out, err := exec.Command("go", "build", "-o", strataBin, ".").CombinedOutput()
	if err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("builds as root; the rootless suite runs these as an unprivileged user")
	}
}

// strata runs the CLI in dir and returns its combined output and exit code.
func strata(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	return strataEnv(t, dir, nil, args...)
}

// strataEnv is strata with env added to the environment.
func strataEnv(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(strataBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("strata %v: %v", args, err)
	}
	return buf.String(), code
}

func mustStrata(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, code := strata(t, dir, args...)
	if code != 0 {
		t.Fatalf("strata %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func repo(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readJSON(t *testing.T, layout, dgst string, v any) {
	t.Helper()
	algo, hex, _ := strings.Cut(dgst, ":")
	b, err := os.ReadFile(filepath.Join(layout, "blobs", algo, hex))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// image returns the manifest and config tagged tag in layout.
func image(t *testing.T, layout, tag string) (v1.Manifest, v1.Image) {
	t.Helper()
	var idx v1.Index
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, d := range idx.Manifests {
		if d.Annotations[v1.AnnotationRefName] == tag {
			var m v1.Manifest
			var c v1.Image
			readJSON(t, layout, d.Digest.String(), &m)
			readJSON(t, layout, m.Config.Digest.String(), &c)
			return m, c
		}
	}
	t.Fatalf("no tag %q in %s", tag, layout)
	return v1.Manifest{}, v1.Image{}
}

// layerEntries lists the entries of a tar+gzip layer blob.
func layerEntries(t *testing.T, layout string, d v1.Descriptor) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(filepath.Join(layout, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = h
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	return out
}

func noMountsUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), dir) {
		t.Errorf("mounts left under %s:\n%s", dir, b)
	}
}

func TestHelloEndToEnd(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	store, layout := filepath.Join(tmp, "store"), filepath.Join(tmp, "oci")
	hello := repo(t, "examples/hello")
	flags := []string{"--store", store, "--layout", layout}

	out := mustStrata(t, hello, append([]string{"build"}, flags...)...)
	for _, want := range []string{"busybox: building", "hello: building", "hello | + echo built", "2 built"} {
		if !strings.Contains(out, want) {
			t.Errorf("first build output lacks %q:\n%s", want, out)
		}
	}
	noMountsUnder(t, tmp)

	m, cfg := image(t, layout, "hello")
	if len(m.Layers) != 2 {
		t.Fatalf("hello has %d layers, want 2 (busybox's and its own)", len(m.Layers))
	}
	if !contains(cfg.Config.Env, "GREETING=hi") {
		t.Errorf("env = %v, want GREETING=hi", cfg.Config.Env)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/bin/cat /etc/greeting" {
		t.Errorf("entrypoint = %v", cfg.Config.Entrypoint)
	}
	if len(cfg.RootFS.DiffIDs) != 2 || len(cfg.History) != 2 {
		t.Errorf("diff ids %v, history %v", cfg.RootFS.DiffIDs, cfg.History)
	}
	top := layerEntries(t, layout, m.Layers[1])
	for _, name := range []string{"built", "etc/greeting", "bin/.wh.vi"} {
		if top[name] == nil {
			t.Errorf("hello's layer lacks %s; it has %v", name, keys(top))
		}
	}
	if top["bin/busybox"] != nil {
		t.Error("hello's layer repeats busybox's files")
	}
	base := layerEntries(t, layout, m.Layers[0])
	if h := base["bin/busybox"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("busybox layer: bin/busybox = %+v", h)
	}

	// Tools people already run read the layout.
	sk, err := exec.Command("skopeo", "inspect", "--config", "oci:"+layout+":hello").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, sk)
	}
	if !strings.Contains(string(sk), "GREETING=hi") {
		t.Errorf("skopeo sees no GREETING:\n%s", sk)
	}
	bundle := filepath.Join(tmp, "bundle")
	if um, err := exec.Command("umoci", "unpack", "--image", layout+":hello", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, um)
	}
	if b, err := os.ReadFile(filepath.Join(bundle, "rootfs/etc/greeting")); err != nil || !strings.Contains(string(b), "Hello") {
		t.Errorf("unpacked greeting = %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(bundle, "rootfs/bin/vi")); !os.IsNotExist(err) {
		t.Errorf("bin/vi survived its whiteout: %v", err)
	}

	// Nothing changed: no step runs and the layout stays byte-identical.
	before := snapshot(t, layout)
	out = mustStrata(t, hello, append([]string{"build"}, flags...)...)
	if strings.Contains(out, " | ") || !strings.Contains(out, "busybox: cached") || !strings.Contains(out, "hello: cached") {
		t.Errorf("second build ran something:\n%s", out)
	}
	after := snapshot(t, layout)
	if len(before) != len(after) {
		t.Errorf("layout has %d files, had %d", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed on a no-op rebuild", k)
		}
	}

	out = mustStrata(t, hello, "run", "--store", store, "--layout", layout, "hello")
	if !strings.Contains(out, "Hello from an image defined in Go!") {
		t.Errorf("strata run hello printed:\n%s", out)
	}
	noMountsUnder(t, tmp)
}

func TestFailingStep(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	out, code := strata(t, "testdata/failing", "build", "--store", filepath.Join(tmp, "store"), "--layout", filepath.Join(tmp, "oci"))
	if code != 3 {
		t.Errorf("exit code %d, want the step's 3:\n%s", code, out)
	}
	for _, want := range []string{"fails | first step ran", "fails | about to fail", `image "fails": step 2 (`, "images.go:13) failed: exit status 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "not reached") {
		t.Errorf("the script went on after the failure:\n%s", out)
	}
	logs := filepath.Join(tmp, "store", "logs")
	if want := "full build logs: " + logs + "/ (e.g. " + filepath.Join(logs, "fails.log") + ")"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if b, err := os.ReadFile(filepath.Join(logs, "fails.log")); err != nil || !strings.Contains(string(b), "about to fail") {
		t.Errorf("fails.log: %v\n%s", err, b)
	}
	noMountsUnder(t, tmp)
	if entries, _ := os.ReadDir(filepath.Join(tmp, "store", "tmp")); len(entries) != 0 {
		t.Errorf("store tmp/ keeps %d entries after the failure", len(entries))
	}
}

// A step written by a library function names the user's line that called
// the library as well as the library's own, outermost first. The variable's
// type is found in the library's source: it is not written out.
func TestFailingStepOfALibrary(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	out, code := strata(t, "testdata/failinglib", "build", "--store", filepath.Join(tmp, "store"), "--layout", filepath.Join(tmp, "oci"))
	if code != 4 {
		t.Errorf("exit code %d, want the step's 4:\n%s", code, out)
	}
	if want := `image "fails-in-lib": step 2 (images.go:8 → steps/steps.go:14) failed: exit status 4`; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	noMountsUnder(t, tmp)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
