package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// exampleBuild is a build of an examples/ package. Its store lives under
// the system's temporary folder across test runs when keep is set, so the
// go-service example's compiler cache (a cache mount, in the store) stays
// warm.
func exampleBuild(t *testing.T, pkg string, keep bool) sourcesBuild {
	t.Helper()
	b := newSourcesBuild(t, "")
	b.dir = repo(t, "examples/"+pkg)
	if keep {
		root := filepath.Join(os.TempDir(), "strata-example-"+pkg)
		b.store, b.layout = filepath.Join(root, "store"), filepath.Join(root, "oci")
	}
	return b
}

func (b sourcesBuild) run(t *testing.T, name string) string {
	t.Helper()
	return mustStrata(t, b.dir, "run", "--store", b.store, "--layout", b.layout, name)
}

// TestExampleLibrary builds the two images of examples/library from the
// typed blocks of examples/library/blocks.
func TestExampleLibrary(t *testing.T) {
	needRoot(t)
	b := exampleBuild(t, "library", false)
	mustStrata(t, b.dir, b.args("build")...)
	if got := b.run(t, "web"); got != "maintained by platform-team\nweb: serving as app\n" {
		t.Errorf("web prints %q", got)
	}
	if got := b.run(t, "worker"); got != "maintained by platform-team\nworker: working as app\n" {
		t.Errorf("worker prints %q", got)
	}
	web, _ := image(t, b.layout, "web")
	worker, _ := image(t, b.layout, "worker")
	// Both build on the one shared base layer.
	if web.Layers[1].Digest != worker.Layers[1].Digest {
		t.Errorf("web and worker do not share the base layer: %s vs %s", web.Layers[1].Digest, worker.Layers[1].Digest)
	}
	fsEncodings(t, b, nil, "web", "worker")
}

// fsEncodings builds an example again as squashfs and erofs too, which
// encodes the stored layers without running a step, and checks every
// squashfs and erofs layer of the named images with veritysetup.
func fsEncodings(t *testing.T, b sourcesBuild, extra []string, names ...string) {
	t.Helper()
	out := mustStrata(t, b.dir, b.args("build", append([]string{"--layer-type", "tar", "--layer-type", "squashfs", "--layer-type", "erofs"}, extra...)...)...)
	if strings.Contains(out, " | + ") {
		t.Errorf("a step ran to encode layers:\n%s", out)
	}
	for _, name := range names {
		for _, tag := range []string{name + "-squashfs", name + "-erofs"} {
			m, _ := image(t, b.layout, tag)
			fs := 0
			for _, l := range m.Layers {
				if strings.HasPrefix(l.MediaType, "application/vnd.stacker.image.layer.") {
					verityVerify(t, b.layout, l)
					fs++
				}
			}
			if fs == 0 {
				t.Errorf("%s has no squashfs or erofs layer: %+v", tag, m.Layers)
			}
		}
	}
}

// TestExampleGoService builds examples/go-service: a build-only builder
// compiles the program with the host's Go toolchain (bound read-only,
// keyed by its VERSION) and the scratch image holds only the binary; a
// second build with nothing changed is cached from end to end.
func TestExampleGoService(t *testing.T) {
	needRoot(t)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("needs the go command: %v", err)
	}
	b := exampleBuild(t, "go-service", true)
	set := []string{"--set", "GOROOT=" + strings.TrimSpace(string(goroot))}
	mustStrata(t, b.dir, b.args("build", set...)...)
	out := mustStrata(t, b.dir, b.args("build", set...)...)
	for _, want := range []string{"go-builder: cached", "hello-service: cached"} {
		if !strings.Contains(out, want) {
			t.Errorf("second build: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, " | ") || strings.Contains(out, "host binds") {
		t.Errorf("second build ran steps:\n%s", out)
	}
	if got := b.run(t, "hello-service"); got != "hello from a Go service in a scratch image\n" {
		t.Errorf("hello-service prints %q", got)
	}
	m, cfg := image(t, b.layout, "hello-service")
	if len(m.Layers) != 1 {
		t.Fatalf("hello-service has %d layers, want the binary's alone", len(m.Layers))
	}
	entries := layerEntries(t, b.layout, m.Layers[0])
	if len(entries) != 1 || entries["hello-service"] == nil {
		t.Errorf("hello-service layer holds %v, want only hello-service", keys(entries))
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/hello-service" {
		t.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
	if _, code := strata(t, b.dir, "inspect", "--layout", b.layout, "go-builder"); code == 0 {
		t.Error("the build-only builder was tagged")
	}
}

// debianTarball makes (once a day, kept in /var/cache/strata-examples)
// the bookworm minbase tarball of examples/debian with mmdebstrap, from
// the Debian mirrors this machine's apt uses.
func debianTarball(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Skip("needs mmdebstrap (go run mage.go deps)")
	}
	dir := "/var/cache/strata-examples"
	out := filepath.Join(dir, "bookworm-minbase-"+time.Now().UTC().Format("20060102")+".tar.zst")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--variant=minbase", "--quiet", "bookworm", out + ".tmp.tar.zst"}
	args = append(args, hostSources(t)...)
	cmd := exec.Command("mmdebstrap", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(out + ".tmp.tar.zst")
		t.Fatalf("mmdebstrap: %v\n%s", err, b)
	}
	if err := os.Rename(out+".tmp.tar.zst", out); err != nil {
		t.Fatal(err)
	}
	return out
}

// hostSources are this machine's apt sources files that name Debian: the
// mirror the machine can reach.
func hostSources(t *testing.T) []string {
	var files []string
	cands, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	for _, f := range append([]string{"/etc/apt/sources.list"}, cands...) {
		if !strings.HasSuffix(f, ".list") && !strings.HasSuffix(f, ".sources") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "debian") {
			continue
		}
		files = append(files, f)
	}
	return files
}

// TestExampleDebian builds examples/debian: a Debian base from an
// mmdebstrap tarball, then apt-get install of a real package from the
// mirror through the host's network. It is the only Debian-based test.
func TestExampleDebian(t *testing.T) {
	needRoot(t)
	tarball := debianTarball(t)
	b := exampleBuild(t, "debian", false)
	out := mustStrata(t, b.dir, b.args("build", "--set", "DEBIAN_TARBALL="+tarball)...)
	if !strings.Contains(out, "Hello, world!") {
		t.Errorf("the build's hello step did not greet:\n%s", out)
	}
	if got := b.run(t, "hello-debian"); got != "Hello, world!\n" {
		t.Errorf("hello-debian prints %q", got)
	}
	m, _ := image(t, b.layout, "hello-debian")
	entries := layerEntries(t, b.layout, m.Layers[len(m.Layers)-1])
	if entries["usr/bin/hello"] == nil {
		t.Errorf("the image's own layer lacks usr/bin/hello")
	}
	// apt and dpkg write the time into their logs; the example removes
	// them so that a second clean build gives the same image.
	again := exampleBuild(t, "debian", false)
	mustStrata(t, again.dir, again.args("build", "--set", "DEBIAN_TARBALL="+tarball)...)
	if first, second := layoutDigest(t, b.layout, "hello-debian"), layoutDigest(t, again.layout, "hello-debian"); first != second {
		t.Errorf("two clean builds of hello-debian differ: %s vs %s", first, second)
	}
	// Its SBOM lists the Debian packages, hello among them, and is the
	// same for both clean builds.
	sbom, purls := sbomOf(t, b.layout, "hello-debian")
	if !slices.ContainsFunc(purls, func(p string) bool { return strings.HasPrefix(p, "pkg:deb/debian/hello@") }) || len(purls) < 50 {
		t.Errorf("hello-debian's SBOM lists %d packages, hello not among them: %v", len(purls), purls)
	}
	if again, _ := sbomOf(t, again.layout, "hello-debian"); again != sbom {
		t.Errorf("two clean builds give different SBOMs: %s vs %s", sbom, again)
	}
	fsEncodings(t, b, []string{"--set", "DEBIAN_TARBALL=" + tarball}, "hello-debian")
}
