package dsl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/dsl/internal/testlib"
)

// libLine is the line of internal/testlib/testlib.go marked "line: tag",
// as a position String shows it from the dsl folder, where tests run.
func libLine(t *testing.T, tag string) string {
	t.Helper()
	const file = "internal/testlib/testlib.go"
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.HasSuffix(l, "// line: "+tag) {
			return fmt.Sprintf("%s:%d", file, i+1)
		}
	}
	t.Fatalf("no line marked %q in %s", tag, file)
	return ""
}

// initVar is made while the package initialises, like a target.
var initVar, initLine = testlib.App("init"), thisLine()

func here(line int) string { return fmt.Sprintf("pos_test.go:%d", line) }

func TestPosNamesTheCallersOfALibrary(t *testing.T) {
	direct, directLine := dsl.New("direct").From(dsl.Scratch()).Run("true"), thisLine()
	app, appLine := testlib.App("app"), thisLine()
	wrapped, wrappedLine := testlib.Wrapped("wrapped"), thisLine()
	deep, deepLine := testlib.Deep(5, "deep"), thisLine()
	opt, optLine := dsl.New("opt").From(dsl.Scratch()).With(testlib.WithEcho("hi")), thisLine()

	for _, c := range []struct {
		what string
		pos  dsl.Pos
		want []string
	}{
		{"direct step", direct.Steps()[0].Pos, []string{here(directLine)}},
		{"step of a library function", app.Steps()[0].Pos, []string{here(appLine), libLine(t, "app-run")}},
		{"New in a library function", app.Defined(), []string{here(appLine), libLine(t, "app-new")}},
		{"two library functions", wrapped.Steps()[0].Pos, []string{here(wrappedLine), libLine(t, "wrapped"), libLine(t, "app-run")}},
		// Recursion repeats one line, which is kept once, and the chain is
		// cut to the user's line and the lines nearest to dsl.
		{"deep chain", deep.Steps()[0].Pos, []string{here(deepLine), libLine(t, "deep"), libLine(t, "deep-end"), libLine(t, "app-run")}},
		{"package variable", initVar.Steps()[0].Pos, []string{here(initLine), libLine(t, "app-run")}},
		{"option of a library", opt.Steps()[0].Pos, []string{here(optLine), libLine(t, "with-echo")}},
	} {
		if got, want := c.pos.String(), strings.Join(c.want, " → "); got != want {
			t.Errorf("%s: Pos = %s, want %s", c.what, got, want)
		}
	}

	// File and Line stay the innermost frame: the line that called dsl.
	_, file, _, _ := runtime.Caller(0)
	lib := filepath.Join(filepath.Dir(file), "internal/testlib/testlib.go")
	if p := app.Steps()[0].Pos; p.File != lib || len(p.Callers) != 1 || p.Callers[0] != (dsl.Frame{File: file, Line: appLine}) {
		t.Errorf("step of a library function: Pos = %+v, want File %s and Callers [%s:%d]", p, lib, file, appLine)
	}
	if p := direct.Steps()[0].Pos; p.File != file || p.Line != directLine || p.Callers != nil {
		t.Errorf("direct step: Pos = %+v, want %s:%d and no Callers", p, file, directLine)
	}
}

func TestPosRoundTripsThroughJSON(t *testing.T) {
	for _, p := range []dsl.Pos{
		testlib.Wrapped("x").Steps()[0].Pos,
		dsl.New("x").Defined(),
	} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back dsl.Pos
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Errorf("Pos through %s (-before +after):\n%s", b, diff)
		}
	}
}

func TestErrorsOfALibraryNameTheCaller(t *testing.T) {
	img, line := testlib.App("Bad Name"), thisLine()
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	want := here(line) + " → " + libLine(t, "app-new") + `: image name "Bad Name"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %s", err, want)
	}
}

func TestKeysDoNotDependOnTheCallChain(t *testing.T) {
	key := func(img *dsl.Image) digest.Digest {
		t.Helper()
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node(img.Name()).Key
	}
	direct := dsl.New("same").From(dsl.Scratch()).Run("echo same")
	if a, b, c := key(direct), key(testlib.App("same")), key(testlib.Deep(2, "same")); a != b || b != c {
		t.Errorf("keys of one definition made through different calls differ: %s, %s, %s", a, b, c)
	}
}

func TestLibraryTakesSourcesMadeByTheCaller(t *testing.T) {
	t.Chdir(t.TempDir())
	img := testlib.Copy("copy", dsl.File("testdata/greeting.txt"))
	_, file, _, _ := runtime.Caller(0)
	src := img.Steps()[0].Import.Source.(*dsl.LocalSource)
	if want := filepath.Join(filepath.Dir(file), "testdata/greeting.txt"); src.Path != want {
		t.Errorf("path = %s, want %s (the caller's folder)", src.Path, want)
	}
	if _, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{}); err != nil {
		t.Errorf("evaluate: %v", err)
	}
}

func TestFuncPackage(t *testing.T) {
	for fn, want := range map[string]string{
		"example.com/images/blocks.App.func1":       "example.com/images/blocks",
		"sync.(*Once).Do":                           "sync",
		"main.main":                                 "main",
		"runtime.doInit1":                           "runtime",
		"example.com/x.F[example.com/y.T]":          "example.com/x",
		"example.com/x.(*G[example.com/y/z.T]).Run": "example.com/x",
	} {
		if got := dsl.FuncPackage(fn); got != want {
			t.Errorf("funcPackage(%q) = %q, want %q", fn, got, want)
		}
	}
}
