package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trustStampsAtOnce lets a test's freshly written files be trusted by
// their stamps. The kernels this runs on give a changed file a change
// time finer than a clock tick once its stamp has been read, which is
// what the window guards against elsewhere.
func trustStampsAtOnce(t *testing.T) {
	old := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = old })
}

// TestStampedKey: the key recorded with the stamps of its inputs is taken
// while nothing changed, and any change that changes the key — an edit
// that keeps size and modification time included — is noticed.
func TestStampedKey(t *testing.T) {
	if _, ok := stampOf("."); !ok {
		t.Skip("no stamps on this platform")
	}
	trustStampsAtOnce(t)
	t.Setenv("GOWORK", "")
	t.Setenv("GOFLAGS", "")
	root := newModule(t, definitions)
	dir := filepath.Join(root, "images")
	folder := t.TempDir()
	key := func() (string, bool) {
		t.Helper()
		ws, err := findWorkspace(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, stamped := stampedKey(folder, append(keyPrefix(ws, dir, goTool{}, testStrata), selfIdentity()...))
		k, save, err := currentKey(folder, ws, dir, goTool{}, testStrata, false)
		if err != nil {
			t.Fatal(err)
		}
		save()
		if want := keyOf(t, dir); k != want {
			t.Fatalf("key %s, the contents give %s", k, want)
		}
		return k, stamped
	}
	first, _ := key()
	if k, stamped := key(); !stamped || k != first {
		t.Fatalf("unchanged inputs: stamped %v, same key %v", stamped, k == first)
	}

	steps := []struct {
		name   string
		change func(t *testing.T)
	}{
		{"same-size edit with the modification time set back", func(t *testing.T) {
			p := filepath.Join(root, "lib", "lib.go")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			writeTree(t, root, map[string]string{"lib/lib.go": strings.Replace(definitions["lib/lib.go"], "hello", "HELLO", 1)})
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}},
		{"file added to the definitions", func(t *testing.T) {
			writeTree(t, root, map[string]string{"images/more.go": "package images\n"})
		}},
		{"go.mod edited", func(t *testing.T) {
			writeTree(t, root, map[string]string{"go.mod": "module example.com/t\n\ngo 1.26\n\n// edited\n"})
		}},
		{"go.work created above", func(t *testing.T) {
			writeTree(t, root, map[string]string{"go.work": "go 1.26\n\nuse .\n"})
		}},
		{"GOFLAGS changed", func(t *testing.T) { t.Setenv("GOFLAGS", "-trimpath") }},
	}
	prev := first
	for _, s := range steps {
		s.change(t)
		k, stamped := key()
		if stamped || k == prev {
			t.Errorf("%s: stamped %v, key changed %v", s.name, stamped, k != prev)
		}
		if _, stamped := key(); !stamped {
			t.Errorf("%s: the new key was not recorded", s.name)
		}
		prev = k
	}
}

// TestStampsOfFreshFilesNotTrusted: a file changed in the moment its
// stamp was taken could change again without its stamp changing, so such
// a record is not kept.
func TestStampsOfFreshFilesNotTrusted(t *testing.T) {
	t.Setenv("GOWORK", "")
	root := newModule(t, definitions)
	dir := filepath.Join(root, "images")
	folder := t.TempDir()
	ws, err := findWorkspace(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, save, err := currentKey(folder, ws, dir, goTool{}, testStrata, false)
	if err != nil {
		t.Fatal(err)
	}
	save()
	if _, err := os.Stat(filepath.Join(folder, inputsFile)); err == nil {
		t.Error("stamps of files written a moment ago were recorded")
	}
}

func TestNotReusable(t *testing.T) {
	t.Setenv("GOFLAGS", "")
	tests := []struct {
		name  string
		files map[string]string
		why   string // "" when the document may be reused
	}{{
		name:  "environment, strings and a local package",
		files: map[string]string{"images/a.go": "package images\n\nimport (\n\t\"os\"\n\t\"strings\"\n\n\t\"example.com/t/lib\"\n\t\"example.com/t/strata/dsl\"\n)\n\nvar A = dsl.New(strings.ToLower(os.Getenv(\"N\")) + lib.Greeting())\n"},
	}, {
		name:  "reads a file",
		files: map[string]string{"images/a.go": "package images\n\nimport \"os\"\n\nvar v, _ = os.ReadFile(\"VERSION\")\n"},
		why:   "a.go:5:12: uses os.ReadFile",
	}, {
		name:  "renamed os",
		files: map[string]string{"images/a.go": "package images\n\nimport sys \"os\"\n\nvar v, _ = sys.ReadDir(\".\")\n"},
		why:   "uses sys.ReadDir",
	}, {
		name:  "a local package reads the clock",
		files: map[string]string{"lib/lib.go": "package lib\n\nimport \"time\"\n\nfunc Greeting() string { return time.Now().String() }\n"},
		why:   "lib.go:5:33: uses time.Now",
	}, {
		name:  "globs",
		files: map[string]string{"images/a.go": "package images\n\nimport \"path/filepath\"\n\nvar m, _ = filepath.Glob(\"*\")\n"},
		why:   "uses filepath.Glob",
	}, {
		name:  "another module",
		files: map[string]string{"images/a.go": "package images\n\nimport _ \"example.org/blocks\"\n"},
		why:   "imports example.org/blocks",
	}, {
		name:  "runs a program",
		files: map[string]string{"images/a.go": "package images\n\nimport _ \"os/exec\"\n"},
		why:   "imports os/exec",
	}, {
		name:  "prints",
		files: map[string]string{"images/a.go": "package images\n\nfunc init() { println(\"hi\") }\n"},
		why:   "prints",
	}, {
		name:  "template files",
		files: map[string]string{"images/a.go": "package images\n\nimport \"text/template\"\n\nvar t = template.Must(template.New(\"x\").ParseFiles(\"a.tmpl\"))\n"},
		why:   "calls ParseFiles",
	}, {
		name:  "local time",
		files: map[string]string{"images/a.go": "package images\n\nimport \"time\"\n\nvar y = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Local().Year()\n"},
		why:   "calls Local",
	}, {
		name:  "durations and dates in UTC",
		files: map[string]string{"images/a.go": "package images\n\nimport \"time\"\n\nvar d, y = 3 * time.Second, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Year()\n"},
	}, {
		name:  "assembly beside the Go files",
		files: map[string]string{"lib/read_amd64.s": "TEXT ·read(SB),0,$0\n\tRET\n"},
		why:   "holds read_amd64.s, which is not Go",
	}, {
		name:  "a function without a body",
		files: map[string]string{"images/a.go": "package images\n\nfunc read() string\n"},
		why:   "declares read without a body",
	}, {
		name:  "a method called by its name",
		files: map[string]string{"images/a.go": "package images\n\nimport \"reflect\"\n\nvar v = reflect.ValueOf(1).MethodByName(\"String\")\n"},
		why:   "calls MethodByName",
	}, {
		name:  "a deadline off the clock",
		files: map[string]string{"images/a.go": "package images\n\nimport (\n\t\"context\"\n\t\"time\"\n)\n\nvar ctx, _ = context.WithTimeout(context.Background(), time.Second)\n"},
		why:   "uses context.WithTimeout",
	}, {
		name:  "a file only the race detector builds",
		files: map[string]string{"images/race.go": "//go:build race\n\npackage images\n\nimport _ \"os/exec\"\n"},
		why:   "imports os/exec",
	}, {
		name:  "a file the build leaves out",
		files: map[string]string{"images/mage.go": "//go:build mage\n\npackage images\n\nimport _ \"os/exec\"\n"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newModule(t, definitions)
			writeTree(t, root, tt.files)
			ws, err := findWorkspace(filepath.Join(root, "images"))
			if err != nil {
				t.Fatal(err)
			}
			why := notReusable(ws, filepath.Join(root, "images"), testDSL)
			if (why == "") != (tt.why == "") || !strings.Contains(why, tt.why) {
				t.Errorf("notReusable = %q, want %q", why, tt.why)
			}
		})
	}
}

// TestDefinitionsReused: the document is reused, without running the
// driver, while the inputs, the environment (parameters included) and the
// working folder are those it was written with, and is not otherwise.
func TestDefinitionsReused(t *testing.T) {
	goEnv(t)
	root := newModule(t, map[string]string{
		"lib/lib.go": definitions["lib/lib.go"],
		"images/images.go": `package images

import (
	"os"

	"example.com/t/lib"
	"example.com/t/strata/dsl"
)

// Hello greets.
var Hello = dsl.New(os.Getenv("NAME")).Run(lib.Greeting())
`,
	})
	dir := filepath.Join(root, "images")
	cache := t.TempDir()
	runs := filepath.Join(t.TempDir(), "runs")
	ran := 0
	step := func(name string, env []string, wantRun bool, want string) {
		t.Helper()
		d := prepare(t, dir, cache, false)
		doc, cached, err := d.Definitions(context.Background(), append(env, "DRIVER_RUNS="+runs), os.Stderr, true)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		data, _ := os.ReadFile(runs)
		n := strings.Count(string(data), "run")
		if didRun := n > ran; didRun != wantRun || cached == wantRun {
			t.Errorf("%s: driver ran %v (cached %v), want %v", name, didRun, cached, wantRun)
		}
		ran = n
		if !strings.Contains(string(doc), want) {
			t.Errorf("%s: document %q, want %q in it", name, doc, want)
		}
	}
	env := []string{"NAME=a", "STRATA_PARAMS={}"}
	step("first", env, true, "Hello=a+hello")
	step("again", env, false, "Hello=a+hello")
	step("variable changed", []string{"NAME=b", "STRATA_PARAMS={}"}, true, "Hello=b+hello")
	step("variable back", env, false, "Hello=a+hello")
	step("parameter changed", []string{"NAME=a", `STRATA_PARAMS={"v":"2"}`}, true, "Hello=a+hello")
	step("variable added", append(env, "OTHER=1"), true, "Hello=a+hello")

	// A changed input is a new driver, so a new document.
	writeTree(t, root, map[string]string{"lib/lib.go": "package lib\n\nfunc Greeting() string { return \"hi\" }\n"})
	step("imported package edited", env, true, "Hello=a+hi")
	step("again after the edit", env, false, "Hello=a+hi")
	writeTree(t, root, map[string]string{"images/images.go": "package images\n\nimport \"example.com/t/strata/dsl\"\n\n// Hello greets.\nvar Hello = dsl.New(\"c\")\n"})
	step("definitions edited", env, true, "Hello=c")
	step("again after the definitions edit", env, false, "Hello=c")

	wd, _ := os.Getwd()
	t.Chdir(t.TempDir())
	step("another working folder", env, true, "Hello=c")
	t.Chdir(wd)
	step("first working folder", env, false, "Hello=c")

	d := prepare(t, dir, cache, false)
	if _, cached, err := d.Definitions(context.Background(), env, os.Stderr, false); err != nil || cached {
		t.Errorf("reuse off: cached %v, %v", cached, err)
	}

	// Definitions that read a file run every time.
	writeTree(t, root, map[string]string{
		"images/images.go": "package images\n\nimport (\n\t\"os\"\n\n\t\"example.com/t/strata/dsl\"\n)\n\nvar v, _ = os.ReadFile(\"VERSION\")\n\n// Hello greets.\nvar Hello = dsl.New(string(v))\n",
		"images/VERSION":   "1.0",
	})
	step("reads a file", env, true, "Hello=")
	step("reads a file, again", env, true, "Hello=")
	if d := prepare(t, dir, cache, false); !strings.Contains(d.NotReusable, "os.ReadFile") {
		t.Errorf("NotReusable = %q", d.NotReusable)
	}
}

func TestMayBuild(t *testing.T) {
	tests := []struct {
		header  string
		anyTags bool
		want    bool
	}{
		{"package x\n", false, true},
		{"//go:build mage\n\npackage x\n", false, false},
		{"//go:build mage\n\npackage x\n", true, true},
		{"// Copyright.\n\n//go:build ignore\n\npackage x\n", false, false},
		{"//go:build linux && !mage\n\npackage x\n", false, true},
		{"//go:build windows\n\npackage x\n", false, true}, // the go command decides
		{"//go:build !go1.99\n\npackage x\n", false, true}, // so does its release
		{"//go:build cgo && !cgo\n\npackage x\n", false, false},
		{"/* block */\n//go:build mage\n\npackage x\n", false, true}, // not read plainly: built
		{"package x\n\n//go:build mage\n", false, true},              // not a header
	}
	for _, tt := range tests {
		if got := mayBuild([]byte(tt.header), tt.anyTags); got != tt.want {
			t.Errorf("mayBuild(%q, %v) = %v, want %v", tt.header, tt.anyTags, got, tt.want)
		}
	}
}

// A magefile beside the definitions imports what the driver never links:
// an edit there leaves the driver valid, an edit of the magefile does not.
func TestInputKeyIgnoresPackagesOnlyUnbuildableFilesImport(t *testing.T) {
	t.Setenv("GOWORK", "")
	t.Setenv("GOFLAGS", "")
	root := writeTree(t, t.TempDir(), map[string]string{
		"main/go.mod":            "module " + testModule + "\n\ngo 1.26\n",
		"main/images/a.go":       "package images\n",
		"main/images/mage.go":    "//go:build mage\n\npackage images\n\nimport _ \"" + testModule + "/tool\"\n",
		"main/tool/tool.go":      "package tool\n",
		"main/strata/dsl/dsl.go": "package dsl\n",
	})
	dir := filepath.Join(root, "main", "images")
	before := keyOf(t, dir)
	writeTree(t, root, map[string]string{"main/tool/tool.go": "package tool // edited\n"})
	if keyOf(t, dir) != before {
		t.Error("editing a package only a //go:build mage file imports changed the key")
	}
	t.Setenv("GOFLAGS", "-tags=mage")
	withTags := keyOf(t, dir)
	writeTree(t, root, map[string]string{"main/tool/tool.go": "package tool // edited again\n"})
	if keyOf(t, dir) == withTags {
		t.Error("with -tags in GOFLAGS, editing a package a tagged file imports left the key alone")
	}
	t.Setenv("GOFLAGS", "")
	before = keyOf(t, dir)
	writeTree(t, root, map[string]string{"main/images/mage.go": "package images\n\nimport _ \"" + testModule + "/tool\"\n"})
	if keyOf(t, dir) == before {
		t.Error("removing the build line did not change the key")
	}
}
