package driver

import (
	"context"
	"errors"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// definitions is a definitions package that imports another local package,
// so editing that package must rebuild the driver.
var definitions = map[string]string{
	"lib/lib.go": "package lib\n\nfunc Greeting() string { return \"hello\" }\n",
	"images/images.go": `package images

import (
	"example.com/t/lib"
	"example.com/t/strata/dsl"
)

// Hello greets.
var Hello = dsl.New("hello").Run(lib.Greeting())

var base = dsl.New("base")

// App builds on
// an unexported base.
var App *dsl.Image = base.Run("app")
`,
}

func prepare(t testing.TB, dir, cache string, force bool) *Driver {
	t.Helper()
	d, err := Prepare(context.Background(), Options{Dir: dir, CacheDir: cache, StrataImport: testStrata, Force: force})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return d
}

func run(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("running driver: %v\n%s", err, out)
	}
	return string(out)
}

func TestPrepareCache(t *testing.T) {
	goEnv(t)
	root := newModule(t, definitions)
	dir := filepath.Join(root, "images")
	cache := t.TempDir()
	before := listing(t, root)

	first := prepare(t, dir, cache, false)
	if !first.Compiled {
		t.Error("first Prepare did not compile")
	}
	wantTargets := []Target{{Var: "Hello", Doc: "Hello greets."}, {Var: "App", Doc: "App builds on an unexported base."}}
	if diff := cmp.Diff(wantTargets, first.Targets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if first.Package != "example.com/t/images" {
		t.Errorf("Package = %q", first.Package)
	}
	if got, want := run(t, first.Binary), "Hello=hello+hello \"Hello greets.\"\nApp=base+app \"App builds on an unexported base.\"\n"; got != want {
		t.Errorf("driver printed %q, want %q", got, want)
	}

	// Each step changes the tree (or not) and says whether that must compile.
	steps := []struct {
		name    string
		change  func(t *testing.T)
		compile bool
		output  string // checked when not empty
	}{
		{name: "unchanged", change: func(*testing.T) {}},
		{name: "touched", change: func(t *testing.T) {
			later := time.Now().Add(time.Hour)
			for _, f := range []string{"images/images.go", "lib/lib.go", "go.mod"} {
				if err := os.Chtimes(filepath.Join(root, f), later, later); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "imported local package edited", compile: true, change: func(t *testing.T) {
			writeTree(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc Greeting() string { return \"hi\" }\n"})
		}, output: "Hello=hello+hi"},
		{name: "go.mod edited", compile: true, change: func(t *testing.T) {
			writeTree(t, root, map[string]string{"go.mod": "module example.com/t\n\ngo 1.26\n\n// edited\n"})
		}},
		{name: "definitions edited", compile: true, change: func(t *testing.T) {
			writeTree(t, root, map[string]string{"images/images.go": definitions["images/images.go"] + "\n// More.\n"})
		}},
		{name: "unrelated package edited", change: func(t *testing.T) {
			writeTree(t, root, map[string]string{"unused/unused.go": "package unused\n"})
		}},
	}
	for _, s := range steps {
		s.change(t)
		d := prepare(t, dir, cache, false)
		if d.Compiled != s.compile {
			t.Errorf("%s: Compiled = %v, want %v", s.name, d.Compiled, s.compile)
		}
		if !s.compile && d.Binary == "" {
			t.Errorf("%s: no binary", s.name)
		}
		if s.output != "" {
			if got := run(t, d.Binary); !strings.Contains(got, s.output) {
				t.Errorf("%s: driver printed %q, want %q in it", s.name, got, s.output)
			}
		}
		if diff := cmp.Diff(wantTargets, d.Targets); diff != "" {
			t.Errorf("%s: targets (-want +got):\n%s", s.name, diff)
		}
	}
	if d := prepare(t, dir, cache, false); d.Compiled {
		t.Error("Prepare after the steps compiled again")
	}
	if d := prepare(t, dir, cache, true); !d.Compiled {
		t.Error("Force did not compile")
	}

	// The user's tree holds only what the test itself added.
	after := listing(t, root)
	want := append(before, "unused", filepath.Join("unused", "unused.go"))
	if diff := cmp.Diff(listingSet(want), listingSet(after)); diff != "" {
		t.Errorf("files in the module (-want +got):\n%s", diff)
	}

	// Four keys were compiled: only keepEntries remain, and no temporary
	// folders.
	entries, err := os.ReadDir(filepath.Join(cache, folderKey(dir)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) != keepEntries {
		t.Errorf("cache holds %v, want %d entries", names, keepEntries)
	}
}

func listingSet(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[s] = true
	}
	return m
}

// compilerLine is what every line of a CompileError must look like: a
// position, or the indented detail the compiler adds under one.
var compilerLine = regexp.MustCompile(`^(\S+\.go:\d+:\d+: .+|\t.*)$`)

// A target made by a local library function is found; a variable the scan
// cannot tell is reported, on a cache hit too.
func TestPrepareLibraryTargetsAndWarnings(t *testing.T) {
	goEnv(t)
	root := newModule(t, map[string]string{
		"lib/lib.go": `package lib

import "example.com/t/strata/dsl"

func Image(name string) *dsl.Image { return dsl.New(name) }

func Pick[T any](v T) T { return v }
`,
		"images/images.go": `package images

import (
	"example.com/t/lib"
	"example.com/t/strata/dsl"
)

var Lib = lib.Image("lib")

var Maybe = lib.Pick(dsl.New("maybe"))
`,
	})
	dir := filepath.Join(root, "images")
	cache := t.TempDir()
	want := filepath.Join(dir, "images.go") + ":10: var Maybe is not a build target: strata cannot tell its type without compiling; declare it: var Maybe *dsl.Image = lib.Pick(dsl.New(\"maybe\"))"
	for _, compiled := range []bool{true, false} {
		d := prepare(t, dir, cache, false)
		if d.Compiled != compiled {
			t.Errorf("Compiled = %v, want %v", d.Compiled, compiled)
		}
		if diff := cmp.Diff([]Target{{Var: "Lib"}}, d.Targets); diff != "" {
			t.Errorf("targets (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{want}, d.Warnings); diff != "" {
			t.Errorf("warnings, compiled %v (-want +got):\n%s", compiled, diff)
		}
		if got := run(t, d.Binary); got != "Lib=lib \"\"\n" {
			t.Errorf("driver printed %q", got)
		}
	}
}

func TestPrepareCompileError(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // a line of the error
	}{{
		name: "type error in definitions",
		files: map[string]string{"images/images.go": `package images

import "example.com/t/strata/dsl"

var Hello = dsl.New(42)
`},
		want: "images.go:5:21: cannot use 42",
	}, {
		name: "error in an imported local package",
		files: map[string]string{
			"lib/lib.go": "package lib\n\nfunc Greeting() string { return 1 }\n",
			"images/images.go": `package images

import (
	"example.com/t/lib"
	"example.com/t/strata/dsl"
)

var Hello = dsl.New(lib.Greeting())
`},
		want: "lib.go:3:33: cannot use 1",
	}, {
		name:  "syntax error",
		files: map[string]string{"images/images.go": "package images\n\nimport \"example.com/t/strata/dsl\"\n\nvar Hello = dsl.New(\n"},
		want:  "images.go:5:22: expected ')', found 'EOF'",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goEnv(t)
			root := newModule(t, tt.files)
			before := listing(t, root)
			_, err := Prepare(context.Background(), Options{Dir: filepath.Join(root, "images"), CacheDir: t.TempDir(), StrataImport: testStrata})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v (%T), want *CompileError", err, err)
			}
			if !strings.Contains(ce.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", ce.Error(), tt.want)
			}
			for _, l := range strings.Split(ce.Error(), "\n") {
				if !compilerLine.MatchString(l) {
					t.Errorf("line %q is not a compiler message", l)
				}
			}
			if diff := cmp.Diff(before, listing(t, root)); diff != "" {
				t.Errorf("files in the module (-want +got):\n%s", diff)
			}
		})
	}
}

// A variable the syntactic rule takes for an image but is not one fails the
// generated main; the error must point at the variable, not at a file the
// user has never seen.
func TestPrepareMistakenTarget(t *testing.T) {
	goEnv(t)
	root := newModule(t, map[string]string{
		// A func-typed variable is not in the dsl table, so the rule
		// falls back to "a dsl call is an image".
		"strata/dsl/describe.go": "package dsl\n\nvar Describe = func() string { return \"\" }\n",
		"images/images.go": `package images

import "example.com/t/strata/dsl"

var Hello = dsl.New("hello")

var Desc = dsl.Describe()
`,
	})
	_, err := Prepare(context.Background(), Options{Dir: filepath.Join(root, "images"), CacheDir: t.TempDir(), StrataImport: testStrata})
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want *CompileError", err)
	}
	want := filepath.Join(root, "images", "images.go") + ":7:5: Desc: cannot use defs.Desc"
	if !strings.HasPrefix(ce.Error(), want) || !strings.Contains(ce.Error(), "var Desc *dsl.Image = ...") {
		t.Errorf("error = %q, want it to start with %q and suggest a typed var", ce.Error(), want)
	}
}

// Concurrent runs on a cold cache all get a complete binary.
func TestPrepareConcurrent(t *testing.T) {
	goEnv(t)
	root := newModule(t, definitions)
	dir := filepath.Join(root, "images")
	cache := t.TempDir()
	const n = 3
	errs := make(chan error, n)
	bins := make(chan string, n)
	for range n {
		go func() {
			d, err := Prepare(context.Background(), Options{Dir: dir, CacheDir: cache, StrataImport: testStrata})
			if err == nil {
				bins <- d.Binary
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(bins)
	for b := range bins {
		if got := run(t, b); !strings.HasPrefix(got, "Hello=") {
			t.Errorf("driver printed %q", got)
		}
	}
}

// Packages of local replace targets and workspace modules are hashed like
// the main module's own.
func TestInputKeyLocalModules(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		edit  string // file whose edit must change the key
	}{{
		name: "replace",
		files: map[string]string{
			"main/go.mod":      "module example.com/main\n\ngo 1.26\n\nrequire example.com/dep v0.0.0\n\nreplace example.com/dep => ../dep\n",
			"main/images/a.go": "package images\n\nimport \"example.com/dep/pkg\"\n\nvar _ = pkg.X\n",
			"dep/go.mod":       "module example.com/dep\n\ngo 1.26\n",
			"dep/pkg/pkg.go":   "package pkg\n\nimport \"example.com/dep/inner\"\n\nvar X = inner.Y\n",
			"dep/inner/in.go":  "package inner\n\nvar Y = 1\n",
		},
		edit: "dep/inner/in.go",
	}, {
		name: "workspace",
		files: map[string]string{
			"go.work":          "go 1.26\n\nuse (\n\t./main\n\t./dep\n)\n",
			"main/go.mod":      "module example.com/main\n\ngo 1.26\n",
			"main/images/a.go": "package images\n\nimport \"example.com/dep/pkg\"\n\nvar _ = pkg.X\n",
			"dep/go.mod":       "module example.com/dep\n\ngo 1.26\n",
			"dep/pkg/pkg.go":   "package pkg\n\nvar X = 1\n",
		},
		edit: "dep/pkg/pkg.go",
	}, {
		// The generated main imports strata's dsl: when it is local,
		// editing dsl (or what it imports) must rebuild the driver, even
		// when the definitions do not import it themselves.
		name: "strata's dsl is local",
		files: map[string]string{
			"main/go.mod":                "module " + testModule + "\n\ngo 1.26\n",
			"main/images/a.go":           "package images\n",
			"main/strata/dsl/dsl.go":     "package dsl\n\nimport _ \"" + testModule + "/strata/dsl/inner\"\n",
			"main/strata/dsl/inner/x.go": "package inner\n\nvar Z = 1\n",
		},
		edit: "main/strata/dsl/inner/x.go",
	}, {
		name: "embedded file in a subfolder",
		files: map[string]string{
			"main/go.mod":         "module example.com/main\n\ngo 1.26\n",
			"main/images/a.go":    "package images\n\nimport _ \"embed\"\n\n//go:embed files\nvar files string\n",
			"main/images/files/x": "one",
		},
		edit: "main/images/files/x",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOWORK", "")
			root := writeTree(t, t.TempDir(), tt.files)
			dir := filepath.Join(root, "main", "images")
			key := func() string { return keyOf(t, dir) }
			before := key()
			if again := key(); again != before {
				t.Fatal("key is not stable")
			}
			writeTree(t, root, map[string]string{tt.edit: "package inner // edited\n"})
			if key() == before {
				t.Errorf("editing %s did not change the key", tt.edit)
			}
		})
	}
}

// The driver links only strata's dsl, so editing the rest of a local
// strata (its runtime, its CLI) leaves every driver valid.
func TestInputKeyIgnoresTheRestOfStrata(t *testing.T) {
	t.Setenv("GOWORK", "")
	root := writeTree(t, t.TempDir(), map[string]string{
		"main/go.mod":               "module " + testModule + "\n\ngo 1.26\n",
		"main/images/a.go":          "package images\n",
		"main/strata/dsl/dsl.go":    "package dsl\n",
		"main/strata/strata.go":     "package strata\n\nimport _ \"" + testModule + "/strata/engine\"\n",
		"main/strata/engine/run.go": "package engine\n\nvar Z = 1\n",
	})
	dir := filepath.Join(root, "main", "images")
	key := func() string { return keyOf(t, dir) }
	before := key()
	writeTree(t, root, map[string]string{"main/strata/engine/run.go": "package engine // edited\n"})
	if key() != before {
		t.Error("editing strata's engine, which the driver does not link, changed the key")
	}
}

func TestPrepareErrors(t *testing.T) {
	goEnv(t)
	noModule := writeTree(t, t.TempDir(), map[string]string{"images/a.go": "package images\n"})
	empty := newModule(t, map[string]string{"images/a.go": "package images\n\nvar X = 1\n"})
	mainPkg := newModule(t, map[string]string{"images/a.go": "package main\n\nimport \"example.com/t/strata/dsl\"\n\nvar X = dsl.New(\"x\")\n\nfunc main() {}\n"})
	tests := []struct {
		name string
		dir  string
		is   error
		want string
	}{
		{"no go.mod", filepath.Join(noModule, "images"), errNoModule, "no go.mod found"},
		{"no definitions", filepath.Join(empty, "images"), ErrNoDefinitions, "no exported *dsl.Image variables in " + filepath.Join(empty, "images")},
		{"package main", filepath.Join(mainPkg, "images"), nil, "package main"},
		{"missing folder", filepath.Join(empty, "nope"), os.ErrNotExist, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(context.Background(), Options{Dir: tt.dir, CacheDir: t.TempDir(), StrataImport: testStrata})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func TestPrepareCancel(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses a shell script as the go command")
	}
	goEnv(t)
	root := newModule(t, definitions)
	dir := filepath.Join(root, "images")
	cache := t.TempDir()
	before := listing(t, root)
	// A go command that never finishes stands for a slow compile, so the
	// cancel surely lands while it runs.
	slowGo := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(slowGo, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Prepare(ctx, Options{Dir: dir, CacheDir: cache, StrataImport: testStrata, GoCmd: slowGo})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want deadline exceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Prepare returned %v after the cancel", took)
	}
	if diff := cmp.Diff([]string{"."}, listing(t, filepath.Join(cache, folderKey(dir)))); diff != "" {
		t.Errorf("cache after cancel (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, listing(t, root)); diff != "" {
		t.Errorf("files in the module (-want +got):\n%s", diff)
	}
	if _, err := Prepare(context.Background(), Options{Dir: dir, CacheDir: cache, StrataImport: testStrata}); err != nil {
		t.Errorf("Prepare after a cancelled one: %v", err)
	}
}

func TestCleanOutput(t *testing.T) {
	cmdDir := filepath.FromSlash("/repo/images")
	virtual := filepath.FromSlash("/repo/images/.strata-driver-x/main.go")
	lines := map[int]definition{12: {Target: Target{Var: "Base"}}}
	lines[12] = definition{Target: Target{Var: "Base"}, Pos: positionAt(filepath.FromSlash("/repo/images/base.go"), 7, 5)}
	out := "# command-line-arguments\n" +
		virtual + ":12:37: cannot use defs.Base (variable of type dsl.Base) as *dsl.Image value in struct literal\n" +
		"./images.go:3:2: undefined: x\n" +
		"\thave (number)\n" +
		"../lib/lib.go:1:1: bad\n"
	out += filepath.FromSlash("/tmp/x/main.go") + ":5:2: no required module provides package example.com/strata\n"
	got := cleanOutput(out, cmdDir, filepath.FromSlash("/repo"), []string{virtual, filepath.FromSlash("/tmp/x/main.go")}, lines)
	want := strings.Join([]string{
		filepath.FromSlash("images/base.go") + ":7:5: Base: cannot use defs.Base (variable of type dsl.Base) as *dsl.Image value in struct literal (strata took Base for a *dsl.Image target; declare its type, as in var Base *dsl.Image = ..., or unexport it)",
		filepath.FromSlash("images/images.go") + ":3:2: undefined: x",
		"\thave (number)",
		filepath.FromSlash("lib/lib.go") + ":1:1: bad",
		"strata-generated-main.go:5:2: no required module provides package example.com/strata",
	}, "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cleanOutput (-want +got):\n%s", diff)
	}
}

func BenchmarkPrepareCached(b *testing.B) {
	goEnv(b)
	root := newModule(b, definitions)
	dir := filepath.Join(root, "images")
	cache := b.TempDir()
	prepare(b, dir, cache, false)
	b.ResetTimer()
	for b.Loop() {
		if d := prepare(b, dir, cache, false); d.Compiled {
			b.Fatal("compiled on a cache hit")
		}
	}
}

func TestGenerateMain(t *testing.T) {
	defs := []definition{{Target: Target{Var: "Hello", Doc: "Hello greets."}}, {Target: Target{Var: "App", Doc: `Says "hi".`}}}
	g := generateMain(DefaultStrataImport, "example.com/m/images", defs)
	want := `// Code generated by strata. DO NOT EDIT.
package main

import (
	dsl "github.com/strata-build/strata/dsl"
	defs "example.com/m/images"
)

func main() {
	dsl.DriverMain("example.com/m/images", []dsl.Target{
		{Var: "Hello", Doc: "Hello greets.", Image: defs.Hello},
		{Var: "App", Doc: "Says \"hi\".", Image: defs.App},
	})
}
`
	if diff := cmp.Diff(want, string(g.src)); diff != "" {
		t.Errorf("generated main (-want +got):\n%s", diff)
	}
	if _, err := format.Source(g.src); err != nil {
		t.Errorf("generated main does not parse: %v", err)
	}
	lines := strings.Split(string(g.src), "\n")
	for n, d := range g.lines {
		if !strings.Contains(lines[n-1], "defs."+d.Var+"}") {
			t.Errorf("line %d is %q, not %s's", n, lines[n-1], d.Var)
		}
	}
}
