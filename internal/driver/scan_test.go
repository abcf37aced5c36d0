package driver

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScanRule(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string // in images/, or from the module root when the name has a slash
		want     []Target
		warnings []string // file names relative to images/
	}{{
		name: "explicit type and untyped chains",
		files: map[string]string{"a.go": `package images

import "example.com/t/strata/dsl"

// Hello greets.
//   Indented  second line.
var Hello = dsl.New("hello").Run("x")

// Typed has its type written out.
var Typed *dsl.Image = make()

func make() *dsl.Image { return dsl.New("typed") }
`},
		want: []Target{
			{Var: "Hello", Doc: "Hello greets. Indented second line."},
			{Var: "Typed", Doc: "Typed has its type written out."},
		},
	}, {
		name: "unexported images are roots, not targets",
		files: map[string]string{"a.go": `package images

import "example.com/t/strata/dsl"

var base = dsl.New("base")

var App = base.Run("app")

var Alias = App
`},
		want: []Target{{Var: "App"}, {Var: "Alias"}},
	}, {
		name: "declaration order across files does not matter",
		files: map[string]string{
			"a.go": "package images\n\nvar Late = early.Run(\"x\")\n",
			"b.go": "package images\n\nimport \"example.com/t/strata/dsl\"\n\nvar early = dsl.New(\"e\")\n",
		},
		want: []Target{{Var: "Late"}},
	}, {
		name: "non-dsl vars and non-image dsl results are skipped",
		files: map[string]string{"a.go": `package images

import (
	"strings"

	"example.com/t/strata/dsl"
)

var Name = strings.ToUpper("x")
var Count int = 3
var Base = dsl.Scratch()
var Img = dsl.New("i").From(Base)
var Label = Img.Label()
var Ptr *strings.Builder
`},
		want: []Target{{Var: "Img"}},
	}, {
		name: "local functions returning images",
		files: map[string]string{"a.go": `package images

import "example.com/t/strata/dsl"

func service(name string) *dsl.Image { return dsl.New(name) }

func other() string { return "" }

var API = service("api").Run("x")
var Other = other()
`},
		want: []Target{{Var: "API"}},
	}, {
		name: "renamed and dot imports",
		files: map[string]string{
			"a.go": "package images\n\nimport d \"example.com/t/strata/dsl\"\n\nvar A = d.New(\"a\")\nvar T *d.Image\n",
			"b.go": "package images\n\nimport . \"example.com/t/strata/dsl\"\n\nvar B = New(\"b\")\nvar C *Image\n",
		},
		want: []Target{{Var: "A"}, {Var: "T"}, {Var: "B"}, {Var: "C"}},
	}, {
		name: "groups and several names per spec",
		files: map[string]string{"a.go": `package images

import "example.com/t/strata/dsl"

// The group doc is not a variable's doc.
var (
	// One is first.
	One, Two = dsl.New("1"), dsl.New("2")
	Three    = dsl.New("3") // a line comment is not a doc
	X, Y     = pair()
)

func pair() (*dsl.Image, *dsl.Image) { return nil, nil }
`},
		// One call initialising several names: its declared results decide.
		want: []Target{{Var: "One", Doc: "One is first."}, {Var: "Two", Doc: "One is first."}, {Var: "Three"}, {Var: "X"}, {Var: "Y"}},
	}, {
		name: "test files and excluded files are skipped",
		files: map[string]string{
			"a.go":        "package images\n\nimport \"example.com/t/strata/dsl\"\n\nvar A = dsl.New(\"a\")\n",
			"a_test.go":   "package images\n\nimport \"example.com/t/strata/dsl\"\n\nvar InTest = dsl.New(\"t\")\n",
			"ignored.go":  "//go:build ignore\n\npackage images\n\nimport \"example.com/t/strata/dsl\"\n\nvar Ignored = dsl.New(\"i\")\n",
			"other_os.go": "//go:build plan9 && !plan9\n\npackage images\n\nimport \"example.com/t/strata/dsl\"\n\nvar Never = dsl.New(\"n\")\n",
		},
		want: []Target{{Var: "A"}},
	}, {
		name: "functions and variables of a local package",
		files: map[string]string{
			"a.go": `package images

import (
	"example.com/t/blocks"
	"example.com/t/strata/dsl"
)

var Hello = blocks.Static("hello")
var Chained = blocks.Static("c").Run("x")
var Aliased = blocks.Aliased()
var Defined = blocks.Defined()
var Web = blocks.Web
var Shared = blocks.Shared
var Built = blocks.Built
var Pair, Other = blocks.Pair()
var Team = blocks.NewTeam()
var Name = blocks.Name()
var Greeting = blocks.Greeting
var Generic = blocks.Must(blocks.Static("g"))
var Typed blocks.Img
var Local = dsl.New("local")
`,
			"blocks/blocks.go": `package blocks

import (
	"strings"

	d "example.com/t/strata/dsl"
)

type Img = *d.Image
type Own *d.Image

func Static(name string) *d.Image { return d.New(name) }
func Aliased() Img                { return nil }
func Defined() Own                { return nil }
func Pair() (*d.Image, string)    { return nil, "" }
func Name() string                { return strings.ToUpper("x") }
func Must[T any](v T) T           { return v }

var Web = d.New("web")
var Shared *d.Image
var Built = Static("built").Run("x")

const Greeting = "hi"

type Team struct{}

func NewTeam() *Team                   { return &Team{} }
func (t *Team) App(name string) *d.Image { return d.New(name) }
`,
		},
		want: []Target{
			{Var: "Hello"}, {Var: "Chained"}, {Var: "Aliased"}, {Var: "Defined"}, {Var: "Web"}, {Var: "Shared"},
			{Var: "Built"}, {Var: "Pair"}, {Var: "Typed"}, {Var: "Local"},
		},
		warnings: []string{
			"./a.go:19: var Generic is not a build target: strata cannot tell its type without compiling; declare it: var Generic *dsl.Image = blocks.Must(blocks.Static(\"g\"))",
		},
	}, {
		name: "imports known by a package name other than their path's",
		files: map[string]string{
			"a.go": `package images

import (
	"example.com/t/go-blocks"
	"example.com/t/odd"
)

var Guessed = blocks.App()
var Declared = different.App()
var Unknown = nowhere.App()
`,
			"go-blocks/b.go": "package blocks\n\nimport \"example.com/t/strata/dsl\"\n\nfunc App() *dsl.Image { return nil }\n",
			"odd/b.go":       "package different\n\nimport \"example.com/t/strata/dsl\"\n\nfunc App() *dsl.Image { return nil }\n",
		},
		want: []Target{{Var: "Guessed"}, {Var: "Declared"}},
		warnings: []string{
			"./a.go:10: var Unknown is not a build target: strata cannot tell its type without compiling; declare it: var Unknown *dsl.Image = nowhere.App()",
		},
	}, {
		name: "a replaced module and a method of its type",
		files: map[string]string{
			"./go.mod": "module example.com/t\n\ngo 1.26\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ./lib\n",
			"a.go": `package images

import (
	lib "example.com/lib/blocks"
	"example.com/t/strata/dsl"
)

var App = lib.App("app")
var Svc = lib.NewTeam().App("svc")
var Base = dsl.New("base")
`,
			"lib/go.mod": "module example.com/lib\n\ngo 1.26\n",
			"lib/blocks/blocks.go": `package blocks

import "example.com/t/strata/dsl"

func App(name string) *dsl.Image { return dsl.New(name) }

type Team struct{}

func NewTeam() *Team                       { return &Team{} }
func (t *Team) App(name string) *dsl.Image { return dsl.New(name) }
`,
		},
		want: []Target{{Var: "App"}, {Var: "Base"}},
		warnings: []string{
			"./a.go:9: var Svc is not a build target: strata cannot tell its type without compiling; declare it: var Svc *dsl.Image = lib.NewTeam().App(\"svc\")",
		},
	}, {
		name: "a function of a package whose source is not on disk",
		files: map[string]string{"a.go": `package images

import (
	"example.org/ext"
	"example.com/t/strata/dsl"
)

// Hello comes from a library the scan cannot read.
var Hello = ext.Static("hello", ext.WithMessage("a long message that does not fit"))
var hidden = ext.Static("hidden")
var Base = dsl.New("base")
var Typed *dsl.Image = ext.Static("typed")
`},
		want: []Target{{Var: "Base"}, {Var: "Typed"}},
		warnings: []string{
			"./a.go:9: var Hello is not a build target: strata cannot tell its type without compiling; declare it: var Hello *dsl.Image = ext.Static(...)",
		},
	}, {
		name: "values that are obviously not images give no warning",
		files: map[string]string{"a.go": `package images

import (
	"os"
	"strings"

	"example.com/t/strata/dsl"
)

const prefix = "x"

var Str = "x"
var Num = 1 << 3
var Expr = prefix + "y"
var Fn = func() {}
var List = []string{"a"}
var First = List[0]
var Map = map[string]int{}
var Cond = len(Str) > 0
var Upper = strings.ToUpper(Str)
var Replaced = strings.NewReplacer("a", "b").Replace(Str)
var Env = os.Getenv("HOME")
var Func = strings.ToUpper
var Scratch = dsl.Scratch()
var Count int
var Img = dsl.New("img")
`},
		want: []Target{{Var: "Img"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for name, src := range tt.files {
				if !strings.Contains(name, "/") {
					name = "images/" + name
				}
				files[name] = src
			}
			root := newModule(t, files)
			dir := filepath.Join(root, "images")
			ws, err := findWorkspace(dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := scanPackage(dir, ws, testDSL)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.check(dir); err != nil {
				t.Fatal(err)
			}
			var got []Target
			for _, d := range s.defs {
				got = append(got, d.Target)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, relativeWarnings(s.warnings, dir)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// Without the dsl source the rule is purely syntactic: a dsl call counts.
func TestScanWithoutDSLSource(t *testing.T) {
	root := newModule(t, map[string]string{"images/a.go": `package images

import "example.com/t/strata/dsl"

var Base = dsl.Scratch()
`})
	s, err := scanPackage(filepath.Join(root, "images"), nil, testDSL)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.defs) != 1 || s.defs[0].Var != "Base" {
		t.Errorf("defs = %+v, want Base", s.defs)
	}
}

// Scan uses the real import path; a module named like strata's proves it.
func TestScanPublic(t *testing.T) {
	root := writeTree(t, t.TempDir(), map[string]string{
		"go.mod":        "module github.com/strata-build/strata\n\ngo 1.26\n",
		"dsl/dsl.go":    "package dsl\n\ntype Image struct{}\n\nfunc New(string) *Image { return nil }\n",
		"images/doc.go": "package images\n\nimport \"github.com/strata-build/strata/dsl\"\n\n// App is the app.\nvar App = dsl.New(\"app\")\n",
	})
	got, err := Scan(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Target{{Var: "App", Doc: "App is the app."}}, got); diff != "" {
		t.Errorf("Scan (-want +got):\n%s", diff)
	}
}

func TestScanErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		check func(error) bool
		want  string
	}{{
		name:  "no definitions",
		files: map[string]string{"images/a.go": "package images\n\nvar X = 1\n"},
		check: func(err error) bool { return errors.Is(err, ErrNoDefinitions) },
		want:  "no exported *dsl.Image variables in ",
	}, {
		name:  "no definitions the scan can tell",
		files: map[string]string{"images/a.go": "package images\n\nimport \"example.org/ext\"\n\nvar X = ext.Image()\n"},
		check: func(err error) bool { return errors.Is(err, ErrNoDefinitions) },
		want:  "a.go:5: var X is not a build target: strata cannot tell its type without compiling",
	}, {
		name:  "package main",
		files: map[string]string{"images/a.go": "package main\n\nimport \"example.com/t/strata/dsl\"\n\nvar X = dsl.New(\"x\")\n\nfunc main() {}\n"},
		check: func(err error) bool { return err != nil },
		want:  "is package main, which Go programs cannot import",
	}, {
		name:  "syntax error",
		files: map[string]string{"images/a.go": "package images\n\nvar X = (\n"},
		check: func(err error) bool { var ce *CompileError; return errors.As(err, &ce) },
		want:  "a.go:3:11: expected operand",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newModule(t, tt.files)
			dir := filepath.Join(root, "images")
			s, err := scanPackage(dir, nil, testDSL)
			if err == nil {
				err = s.check(dir)
			}
			if !tt.check(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseModFile(t *testing.T) {
	f := parseModFile([]byte(`// comment
module "example.com/m" // trailing

require (
	example.com/a v1.0.0
	example.com/b v1.2.0 // indirect
)
require example.com/c v0.1.0

replace example.com/a => ../a
replace (
	example.com/b v1.2.0 => example.com/fork v1.3.0
	example.com/c => /abs/c
)
use ./x
`))
	want := modFile{
		module:        "example.com/m",
		requires:      map[string]string{"example.com/a": "v1.0.0", "example.com/b": "v1.2.0", "example.com/c": "v0.1.0"},
		cacheReplaces: map[string]string{"example.com/b": "example.com/fork@v1.3.0"},
		replaces:      [][2]string{{"example.com/a", "../a"}, {"example.com/b", "example.com/fork"}, {"example.com/c", "/abs/c"}},
		uses:          []string{"./x"},
	}
	if diff := cmp.Diff(want, f, cmp.AllowUnexported(modFile{})); diff != "" {
		t.Errorf("parseModFile (-want +got):\n%s", diff)
	}
}

func TestEscapeModPath(t *testing.T) {
	if got, want := escapeModPath("github.com/BurntSushi/toml@v1.0.0"), "github.com/!burnt!sushi/toml@v1.0.0"; got != want {
		t.Errorf("escapeModPath = %q, want %q", got, want)
	}
}
