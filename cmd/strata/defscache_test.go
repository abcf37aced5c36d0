package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// defsCacheImages read the environment and a parameter, through a local
// package: their document may be reused.
var defsCacheImages = map[string]string{
	"lib/lib.go": "package lib\n\nfunc Suffix() string { return \"-lib\" }\n",
	"images/images.go": `package images

import (
	"os"

	"example.com/defs/lib"
	"github.com/strata-build/strata/dsl"
)

// Hello greets.
var Hello = dsl.New("hello" + dsl.Param("V", "1") + os.Getenv("SUFFIX") + lib.Suffix()).From(dsl.Scratch())
`,
}

// TestDefinitionsDocumentReused: a command run again with the same
// definitions, environment and parameters takes the definitions from the
// cache without running the driver; a changed variable, parameter,
// definitions file or imported package runs it. Definitions that read a
// file run at every command. The proof that the driver did not run: it is
// replaced by a script that logs its runs and fails.
func TestDefinitionsDocumentReused(t *testing.T) {
	dir := userModule(t, "example.com/defs", defsCacheImages)
	cache := filepath.Join(t.TempDir(), "cache")
	log := filepath.Join(t.TempDir(), "runs")
	list := func(env ...string) (string, int) {
		t.Helper()
		return strataEnv(t, dir, append(env, "XDG_CACHE_HOME="+cache, "RUNS="+log), "list", "./images")
	}
	mustList := func(want string, env ...string) {
		t.Helper()
		out, code := list(env...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("strata list %v exited %d, want %q in:\n%s", env, code, want, out)
		}
	}
	runs := func() int {
		data, _ := os.ReadFile(log)
		return strings.Count(string(data), "ran\n")
	}
	// Every cached driver becomes a script that logs and fails.
	stub := func() {
		t.Helper()
		bins, _ := filepath.Glob(filepath.Join(cache, "strata", "drivers", "*", "*", "driver"))
		if len(bins) == 0 {
			t.Fatal("no cached driver")
		}
		for _, b := range bins {
			if err := os.WriteFile(b, []byte("#!/bin/sh\necho ran >> \"$RUNS\"\nexit 3\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The driver must run (and, stubbed, fail) for this environment.
	mustRun := func(what string, env ...string) {
		t.Helper()
		before := runs()
		if out, code := list(env...); code == 0 || runs() != before+1 {
			t.Errorf("%s: the driver did not run (exit %d, %d runs):\n%s", what, code, runs()-before, out)
		}
	}

	mustList("hello1-lib")
	stub()
	mustList("hello1-lib")
	mustList("hello1-lib")
	if n := runs(); n != 0 {
		t.Fatalf("the driver ran %d times for unchanged definitions, environment and parameters", n)
	}
	mustRun("a variable changed", "SUFFIX=x")
	mustRun("a variable added", "UNRELATED=1")
	mustRun("a parameter set", "STRATA_PARAMS={\"V\":\"2\"}")
	mustRun("reuse turned off", "STRATA_NO_DEFINITIONS_CACHE=1")
	before := runs()
	if out, code := list(); code != 0 || runs() != before {
		t.Fatalf("back to the first environment, the driver ran (exit %d):\n%s", code, out)
	}

	// An edit compiles a new driver, whose document is new.
	writeFiles(t, dir, map[string]string{"lib/lib.go": "package lib\n\nfunc Suffix() string { return \"-edited\" }\n"})
	mustList("hello1-edited")
	writeFiles(t, dir, map[string]string{"images/images.go": strings.Replace(defsCacheImages["images/images.go"], `"hello"`, `"hi"`, 1)})
	mustList("hi1-edited")
	stub()
	mustList("hi1-edited")

	// Definitions that read a file at init (and log their runs): the
	// driver runs every time.
	writeFiles(t, dir, map[string]string{
		"images/VERSION": "7",
		"images/images.go": `package images

import (
	"os"

	"github.com/strata-build/strata/dsl"
)

var version = func() string {
	f, err := os.OpenFile(os.Getenv("RUNS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	f.WriteString("ran\n")
	f.Close()
	v, err := os.ReadFile("images/VERSION")
	if err != nil {
		panic(err)
	}
	return string(v)
}()

// Hello greets.
var Hello = dsl.New("hello" + version).From(dsl.Scratch())
`,
	})
	before = runs()
	mustList("hello7")
	writeFiles(t, dir, map[string]string{"images/VERSION": "8"})
	mustList("hello8")
	if n := runs() - before; n != 2 {
		t.Errorf("definitions that read a file ran %d times in two commands", n)
	}
}
