package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// userModule makes a Go module outside this repository the way a user
// does: go mod init, a replace to this checkout (strata is not fetched
// from a proxy here), the strata CLI as a tool of the module, then the
// files, then go mod tidy, all with the default GOFLAGS and GOPROXY. It
// returns the module's folder.
func userModule(t *testing.T, path string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// As a user has them: nothing that makes the go command lenient.
	t.Setenv("GOFLAGS", "")
	goIn(t, dir, "mod", "init", path)
	goIn(t, dir, "mod", "edit", "-replace=github.com/strata-build/strata="+repo(t, ""))
	goIn(t, dir, "mod", "edit", "-tool=github.com/strata-build/strata/cmd/strata")
	writeFiles(t, dir, files)
	goIn(t, dir, "mod", "tidy")
	return dir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// goIn runs the go command in dir and returns its combined output.
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// userImages are the definitions of the user module: a package that
// imports strata's dsl and nothing else of strata.
var userImages = map[string]string{
	"images/images.go": `// Package images holds the module's image definitions.
package images

import "github.com/strata-build/strata/dsl"

// Busybox is the base, made from the host's static busybox.
var Busybox = dsl.New("busybox").
	From(dsl.Scratch()).
	Import(dsl.File("/bin/busybox"), "/bin/busybox").
	Run("#!/bin/busybox sh\n/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /tmp /etc\n/bin/busybox --install -s\n")

// Hello greets.
var Hello = dsl.New("hello").
	From(Busybox).
	Import(dsl.File("greeting.txt"), "/etc/greeting").
	Entrypoint("/bin/cat", "/etc/greeting")
`,
	"images/greeting.txt": "hello from a user's module\n",
	"main.go":             "package main\n\nfunc main() {}\n",
	"magefile.go": `//go:build mage

package main

import (
	"context"

	"github.com/strata-build/strata"

	"example.com/app/images"
)

// Build builds the images into the module's store and layout.
func Build(ctx context.Context) error { return strata.Build(ctx, images.Hello) }
`,
}

// A module made as a user makes it builds with go tool strata from its
// root and from a subfolder into one store and layout at the module root,
// keeps building after another go mod tidy, and mage build in it uses the
// same store.
func TestUserModule(t *testing.T) {
	needRoot(t)
	tmp, _ := engineEnv(t)
	dir := userModule(t, "example.com/app", userImages)
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "tool github.com/strata-build/strata/cmd/strata") {
		t.Fatalf("go.mod does not pin the strata tool:\n%s", gomod)
	}
	tool := func(sub string, args ...string) string {
		t.Helper()
		return goIn(t, filepath.Join(dir, sub), append([]string{"tool", "strata"}, args...)...)
	}
	if out := tool("", "version"); !regexp.MustCompile(`^strata \S+ go1\.\d+`).MatchString(out) {
		t.Errorf("strata version printed %q", out)
	}
	if out := tool("", "list", "./..."); !regexp.MustCompile(`(?m)^hello\s+Hello greets\.$`).MatchString(out) {
		t.Errorf("list ./... from the root:\n%s", out)
	}
	out := tool("", "build", "./images")
	if !strings.Contains(out, "2 built") {
		t.Fatalf("first build from the root:\n%s", out)
	}
	layout := filepath.Join(dir, "oci")
	if _, cfg := image(t, layout, "hello"); strings.Join(cfg.Config.Entrypoint, " ") != "/bin/cat /etc/greeting" {
		t.Errorf("hello's entrypoint is %q", cfg.Config.Entrypoint)
	}
	if um, err := exec.Command("umoci", "ls", "--layout", layout).CombinedOutput(); err != nil || !strings.Contains(string(um), "hello") {
		t.Errorf("umoci ls %s: %v\n%s", layout, err, um)
	}
	if out := tool("images", "build"); !strings.Contains(out, "2 cached") || strings.Contains(out, "built") {
		t.Errorf("second build, from the subfolder, was not served from the module's store:\n%s", out)
	}
	for _, stray := range []string{"images/.strata", "images/oci"} {
		if _, err := os.Stat(filepath.Join(dir, stray)); !os.IsNotExist(err) {
			t.Errorf("a build in the subfolder made %s: %v", stray, err)
		}
	}
	if out := tool("images", "run", "hello"); out != userImages["images/greeting.txt"] {
		t.Errorf("strata run hello printed %q", out)
	}
	// The commands on built definitions take the package too, from the
	// root.
	if out := tool("", "chroot", "./images", "hello", "--", "cat", "/etc/greeting"); out != userImages["images/greeting.txt"] {
		t.Errorf("strata chroot ./images hello printed %q", out)
	}
	grabbed := filepath.Join(tmp, "greeting")
	tool("", "grab", "./images", "hello:/etc/greeting", grabbed)
	if b, err := os.ReadFile(grabbed); err != nil || string(b) != userImages["images/greeting.txt"] {
		t.Errorf("strata grab ./images hello:/etc/greeting gave %q, %v", b, err)
	}
	if out := tool("", "graph", "./images"); !regexp.MustCompile(`(?m)^hello\s+busybox\s+-\s+cached`).MatchString(out) {
		t.Errorf("graph ./images:\n%s", out)
	}

	// go mod tidy again (a user's everyday command) must leave the module
	// able to build.
	goIn(t, dir, "mod", "tidy")
	if out := tool("images", "build"); !strings.Contains(out, "2 cached") {
		t.Errorf("build after another go mod tidy:\n%s", out)
	}

	published := filepath.Join(tmp, "published")
	if out := tool("", "publish", "./images", "hello", "--to", "oci:"+published); !strings.Contains(out, "hello") {
		t.Errorf("publish:\n%s", out)
	}
	if um, err := exec.Command("umoci", "ls", "--layout", published).CombinedOutput(); err != nil || !strings.Contains(string(um), "latest") {
		t.Errorf("umoci ls %s: %v\n%s", published, err, um)
	}

	// mage, started anywhere in the module, writes to the same store.
	mage := filepath.Join(tmp, "mage")
	if out, err := exec.Command("go", "build", "-o", mage, "github.com/magefile/mage").CombinedOutput(); err != nil {
		t.Fatalf("building mage: %v\n%s", err, out)
	}
	cmd := exec.Command(mage, "build")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MAGEFILE_CACHE="+filepath.Join(tmp, "magecache"))
	mout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mage build: %v\n%s", err, mout)
	}
	if !strings.Contains(string(mout), "2 cached") {
		t.Errorf("mage build did not use the module's store:\n%s", mout)
	}
}

// Discovery never drops a target silently: a variable made by a function
// of a local library is found without a type written out, and one whose
// type the scan cannot tell (a generic function's result) is named in a
// warning that says what to write.
func TestDiscoveryWarns(t *testing.T) {
	engineEnv(t)
	dir := userModule(t, "example.com/disc", map[string]string{
		"blocks/blocks.go": `// Package blocks is a library of image definitions.
package blocks

import "github.com/strata-build/strata/dsl"

// Static is an image on scratch.
func Static(name string) *dsl.Image { return dsl.New(name).From(dsl.Scratch()).Run("true") }

// Pick returns v.
func Pick[T any](v T) T { return v }
`,
		"images/images.go": `package images

import "example.com/disc/blocks"

// Lib is made by a library function.
var Lib = blocks.Static("lib")

// Maybe's type is a type parameter's.
var Maybe = blocks.Pick(blocks.Static("maybe"))
`,
	})
	out := mustStrata(t, filepath.Join(dir, "images"), "list")
	if !regexp.MustCompile(`(?m)^lib\s+Lib is made by a library function\.$`).MatchString(out) {
		t.Errorf("the library-made target is not listed:\n%s", out)
	}
	want := "strata: warning: ./images.go:9: var Maybe is not a build target: strata cannot tell its type without compiling; declare it: var Maybe *dsl.Image = blocks.Pick("
	if !strings.Contains(out, want) {
		t.Errorf("no warning %q in:\n%s", want, out)
	}
	// A cache hit warns again.
	if out := mustStrata(t, filepath.Join(dir, "images"), "list"); !strings.Contains(out, want) {
		t.Errorf("second list did not warn:\n%s", out)
	}
	// A package whose only candidates are unsure is skipped by ./..., and
	// still says why.
	writeFiles(t, dir, map[string]string{"more/more.go": `package more

import "example.com/disc/blocks"

// Only's type is a type parameter's too.
var Only = blocks.Pick(blocks.Static("only"))
`})
	out = mustStrata(t, dir, "list", "./...")
	if !strings.Contains(out, "strata: warning: more/more.go:6: var Only is not a build target") || !regexp.MustCompile(`(?m)^lib\s`).MatchString(out) {
		t.Errorf("list ./... did not warn about the skipped package:\n%s", out)
	}
}
