package driver

import (
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Test modules use stand-ins for the strata and dsl packages, so tests need
// neither the network nor the real API.
const (
	testModule = "example.com/t"
	testStrata = testModule + "/strata"
	testDSL    = testStrata + "/dsl"
)

// fakeStrata's DriverMain prints each target so a test can tell the binary
// ran the definitions it was given.
var fakeStrata = map[string]string{
	"go.mod": "module example.com/t\n\ngo 1.26\n",
	"strata/dsl/driver.go": `package dsl

import (
	"fmt"
	"io"
	"os"
)

type Target struct {
	Var, Doc string
	Image    *Image
}

// DriverMain hands the targets over as the real one does when strata runs
// it, and prints them otherwise. It counts its runs in $DRIVER_RUNS.
func DriverMain(pkg string, ts []Target) {
	if runs := os.Getenv("DRIVER_RUNS"); runs != "" {
		f, err := os.OpenFile(runs, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			panic(err)
		}
		fmt.Fprintln(f, "run")
		f.Close()
	}
	var w io.Writer = os.Stdout
	if os.Getenv("STRATA_DEFINITIONS_FD") == "3" {
		w = os.NewFile(3, "definitions")
	}
	for _, t := range ts {
		fmt.Fprintf(w, "%s=%s %q\n", t.Var, t.Image.Name, t.Doc)
	}
}
`,
	"strata/dsl/dsl.go": `package dsl

type Image struct{ Name string }

type Base interface{ isBase() }

type scratch struct{}

func (scratch) isBase() {}

func New(name string) *Image            { return &Image{Name: name} }
func Scratch() Base                     { return scratch{} }
func (i *Image) Run(s string) *Image    { return &Image{Name: i.Name + "+" + s} }
func (i *Image) From(b Base) *Image     { return i }
func (i *Image) Label() string          { return i.Name }
`,
}

// writeTree writes files (slash paths relative to root) and returns root.
func writeTree(t testing.TB, root string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// newModule writes the fake strata module plus extra files into a fresh
// folder.
func newModule(t testing.TB, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	// Resolve symlinks (macOS /var -> /private/var) so paths compare equal
	// to what Prepare reports.
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, fakeStrata)
	writeTree(t, root, extra)
	return root
}

// goEnv runs the go command on the temporary modules as a user's machine
// would: the default GOFLAGS and GOPROXY (the modules are complete and
// need nothing from a proxy), and no go.work of the caller's around them.
func goEnv(t testing.TB) {
	t.Helper()
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOWORK", "off")
}

// listing records every file and folder under root with its size, to
// prove a run left nothing behind.
func listing(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func positionAt(file string, line, col int) token.Position {
	return token.Position{Filename: file, Line: line, Column: col}
}

// keyOf is the driver's cache key of the definitions package in dir.
func keyOf(t testing.TB, dir string) string {
	t.Helper()
	ws, err := findWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	k, err := inputKey(ws, dir, goTool{}, testStrata, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
