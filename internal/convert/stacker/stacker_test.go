package stacker

import (
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func convert(t *testing.T, yaml string, opts Options) *Result {
	t.Helper()
	r, err := Convert([]byte(yaml), opts)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := format.Source(r.Source); err != nil || string(again) != string(r.Source) {
		t.Errorf("the output is not gofmt'ed (%v):\n%s", err, r.Source)
	}
	return r
}

// TestConvertGolden pins the whole output of a small file.
func TestConvertGolden(t *testing.T) {
	r := convert(t, `# Base is where it starts.
base:
  from:
    type: docker
    url: docker://debian:${{DEBIAN:12}}
  run:
    - apt-get update
    - apt-get install -y curl
  environment:
    LANG: C.UTF-8
  build_only: true
# Web serves.
web:
  from:
    type: built
    tag: base
  imports:
    - path: site/
      dest: /srv/
  entrypoint: /usr/bin/httpd -f
  runtime_user: www
`, Options{File: "stacker.yaml", Package: "web"})
	want := "// Code converted from stacker.yaml by strata convert; edit it as your own.\n\n" +
		`// Package web holds the images of stacker.yaml,
// converted from stacker's format into strata definitions.
package web

import "github.com/strata-build/strata/dsl"

// The build parameters of stacker's ${{KEY}} and ${{KEY:default}}
// substitutions: strata build --set KEY=VALUE sets them.
var (
	debian = dsl.Param("DEBIAN", "12")
)

// Base is stacker's layer base of stacker.yaml.
//
// Base is where it starts.
var Base = dsl.New("base").
	From(dsl.Pull("docker://debian:"+debian)).
	Run(` + "`apt-get update\napt-get install -y curl\n`" + `).
	Env("LANG", "C.UTF-8").
	BuildOnly()

// Web is stacker's layer web of stacker.yaml.
//
// Web serves.
var Web = dsl.New("web").
	From(Base).
	Import(dsl.Dir("site/"), "/srv/site").
	Entrypoint("/usr/bin/httpd", "-f").
	User("www")
`
	if string(r.Source) != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.Source, want)
	}
	if len(r.Unsupported) != 0 {
		t.Errorf("unsupported: %q", r.Unsupported)
	}
}

// everyKey uses every directive of stacker's format.
const everyKey = `config:
  prerequisites:
    - ../base/stacker.yaml
  other: x
user:
  from:
    type: built
    tag: app
  imports:
    - stacker://app/out/bin
  run: cat /stacker/imports/bin
app:
  from:
    type: oci
    url: ../layout:${{TAG:v1}}
  imports:
    - conf/
    - path: https://example.com/f.tar.gz
      hash: ABC123
    - http://example.com/unpinned
    - path: a.txt
      dest: /etc/a.txt
      mode: 0640
      uid: 5
      gid: 6
    - path: b.txt
      dest: /etc/b.txt
      uid: 7
    - path: c.txt
      hash: 0123
      dest: /c
  overlay_dirs:
    - source: overlay
      dest: /opt
  run:
    - echo ${{WHO}} > /who
  generate_labels: echo 1 > /stacker/oci-labels/one
  build_env:
    B: "1"
  build_env_passthrough: ["HTTP_.*"]
  environment:
    E: ${{WHO:nobody}}
  labels:
    L: v
  annotations:
    A: v
  volumes: [/v1, /v2]
  cmd: a 'b c' "d\"e"
  entrypoint: [x, y]
  full_command: /bin/true
  working_dir: /w
  runtime_user: "0"
  binds:
    - /h
    - rel -> /in
    - source: /s
      dest: /d
  build_only: false
  os: linux
  arch: arm64
  bom:
    generate: true
  layer_type: squashfs
legacy:
  from:
    type: scratch
  import:
    - legacy.txt
  run: /bin/true
tarred:
  from:
    type: tar
    url: https://example.com/rootfs.tar.gz
  cmd: []
fromimage:
  from:
    type: tar
    url: stacker://app/rootfs.tar
scratch:
  from:
    type: scratch
  imports:
    - unused.txt
  entrypoint: /bin/app
  insecure: true
pulled:
  from:
    type: docker
    url: docker://localhost:5000/x:1
    insecure: true
`

func TestConvertEveryKey(t *testing.T) {
	r := convert(t, everyKey, Options{
		File:    "app/stacker.yaml",
		Package: "app",
		Prerequisites: []Prerequisite{{Path: "../base/stacker.yaml", ImportPath: "example.com/m/images/base",
			Package: "base", Layers: []string{"busybox"}}},
		LocalPath: func(p string) string { return "../../stacker/app/" + p },
		IsDir:     func(p string) bool { return p == "overlay" },
	})
	src := string(r.Source)
	for _, want := range []string{
		`_ "example.com/m/images/base" // prerequisite: no layer here builds on its images`,
		`tag = dsl.Param("TAG", "v1")`,
		// Used without a default first, then with one: the default wins.
		`who = dsl.Param("WHO", "nobody")`,
		`From(dsl.Layout("../../stacker/app/../layout", tag))`,
		`Import(dsl.File("../../stacker/app/legacy.txt"), "/stacker/legacy.txt")`,
		`Import(dsl.Dir("../../stacker/app/conf/"), "/stacker/imports/conf")`,
		`Import(dsl.URL("https://example.com/f.tar.gz", "abc123"), "/stacker/imports/f.tar.gz")`,
		`Import(dsl.URL("http://example.com/unpinned", ""), "/stacker/imports/unpinned")`,
		`Import(dsl.File("../../stacker/app/a.txt"), "/etc/a.txt", dsl.Mode(0o640), dsl.Owner(5, 6))`,
		`Import(dsl.File("../../stacker/app/b.txt"), "/etc/b.txt", dsl.Owner(7, 0))`,
		`Import(dsl.Dir("../../stacker/app/overlay"), "/opt")`,
		`Run("echo "+who+" > /who")`,
		`Run("rm -rf /stacker")`,
		`GenerateLabels("echo 1 > /stacker/oci-labels/one")`,
		`BuildEnv("B", "1")`,
		`Env("E", who)`,
		`Label("L", "v")`,
		`Annotation("A", "v")`,
		`Volume("/v1", "/v2")`,
		`Cmd("a", "b c", "d\"e")`,
		`Entrypoint("x", "y")`,
		"Entrypoint(\"/bin/true\").\n\t// full_command clears the cmd.\n\tCmd()",
		`WorkDir("/w")`,
		`User("0")`,
		`Bind("/h", "/h")`,
		`Bind("../../stacker/app/rel", "/in")`,
		`Bind("/s", "/d")`,
		`From(dsl.Tarball("https://example.com/rootfs.tar.gz"))`,
		`From(dsl.Pull("docker://localhost:5000/x:1", dsl.Insecure()))`,
		`Import(dsl.FromImage(App, "/out/bin"), "/stacker/imports/bin")`,
		"var Tarred = dsl.New(\"tarred\").\n\tFrom(dsl.Tarball(\"https://example.com/rootfs.tar.gz\")).\n\tCmd()\n",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	if strings.Contains(src, "BuildOnly") {
		t.Errorf("build_only: false made a BuildOnly call")
	}
	// app is defined before user, which builds on it.
	if a, u := strings.Index(src, "var App ="), strings.Index(src, "var User ="); a < 0 || u < a {
		t.Errorf("App (at %d) should come before User (at %d)", a, u)
	}
	for _, want := range []string{
		"config: other has no strata equivalent",
		"layer app: hash of import c.txt has no strata equivalent",
		"layer app: import http://example.com/unpinned without a hash",
		"layer app: import b.txt with only one of uid and gid",
		`layer app: build_env_passthrough: ["HTTP_.*"] has no strata equivalent`,
		"layer app: os: linux has no strata equivalent",
		"layer app: arch: arm64 has no strata equivalent",
		"layer app: bom: generate: true has no strata equivalent",
		"layer app: layer_type: squashfs has no strata equivalent: use LayerTypes",
		"layer tarred: from: tar https://example.com/rootfs.tar.gz without a hash",
		"layer fromimage: from: type: tar url: stacker://app/rootfs.tar has no strata equivalent",
		"layer scratch: import unused.txt without dest has no strata equivalent: only a run script sees it",
		"layer scratch: insecure: true has no strata equivalent: strata convert does not know this directive",
	} {
		if !slices.ContainsFunc(r.Unsupported, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("unsupported lacks %q: %q", want, r.Unsupported)
		}
		// Each is also a comment of the generated code.
		if _, after, _ := strings.Cut(want, ": "); !strings.Contains(src, "// stacker: "+strings.SplitN(after, " has no", 2)[0]) && !strings.HasPrefix(want, "config") {
			t.Errorf("no comment for %q", want)
		}
	}
	if !strings.Contains(src, "// stacker: config: other has no strata equivalent") {
		t.Errorf("no comment for config: other")
	}

	// The code is valid Go for the compiler and go vet, not only gofmt.
	vetInModule(t, map[string]string{"images/app/images.go": src, "images/base/images.go": baseGo})
}

const baseGo = `// Package base is a prerequisite.
package base

import "github.com/strata-build/strata/dsl"

// Busybox is a base.
var Busybox = dsl.New("busybox").From(dsl.Scratch())
`

// vetInModule writes files into a module that uses this checkout of strata
// and runs go vet on them.
func vetInModule(t *testing.T, files map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("go vet of a module in -short mode")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.26\n\nrequire github.com/strata-build/strata v0.0.0\n\nreplace github.com/strata-build/strata => " + root + "\n"
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"mod", "tidy"}, {"vet", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s\n%s", strings.Join(args, " "), err, out, files["images/app/images.go"])
		}
	}
}

// TestConvertImportsWithoutDest: stacker shows them to the run script in
// /stacker/imports and never puts them in the image; the conversion
// copies them there and removes /stacker after the script.
func TestConvertImportsWithoutDest(t *testing.T) {
	r := convert(t, `a:
  from:
    type: scratch
  imports:
    - x.sh
    - path: y.txt
      dest: /y.txt
  run: sh /stacker/imports/x.sh
`, Options{})
	want := "var A = dsl.New(\"a\").\n" +
		"\tFrom(dsl.Scratch()).\n" +
		"\tImport(dsl.File(\"x.sh\"), \"/stacker/imports/x.sh\").\n" +
		"\tImport(dsl.File(\"y.txt\"), \"/y.txt\").\n" +
		"\tRun(\"sh /stacker/imports/x.sh\").\n" +
		"\t// stacker shows imports without dest in /stacker during run only.\n" +
		"\tRun(\"rm -rf /stacker\")\n"
	if !strings.Contains(string(r.Source), want) {
		t.Errorf("got:\n%s\nwant it to contain:\n%s", r.Source, want)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"a:\n  run: true\n", "f.yaml:2: layer a: no from"},
		{"a:\n  from:\n    type: nope\n", `f.yaml:3: layer a: from: unknown type "nope"`},
		{"a:\n  from:\n    type: built\n    tag: b\n", "f.yaml:3: layer a: from: built tag b: no layer b in this file or its prerequisites"},
		{"a:\n  from:\n    type: scratch\n  binds:\n    - a b c\n", `f.yaml:5: layer a: binds: line 5: "a b c": want PATH or SOURCE -> DEST`},
		{"a:\n  from:\n    type: scratch\n  imports:\n    - path: x\n      dest: rel\n", "layer a: imports: line 5: dest rel is not absolute"},
		{"a:\n  from:\n    type: scratch\n  cmd: \"'open\"\n", "layer a: cmd: \"'open\": unterminated single quote"},
		{"a:\n  from:\n    type: scratch\n  build_only: maybe\n", "layer a: build_only: want true or false"},
		{"config:\n  prerequisites: [../x/stacker.yaml]\na:\n  from:\n    type: scratch\n", "config: prerequisites: ../x/stacker.yaml was not converted with it"},
		{"my-app:\n  from:\n    type: scratch\nmy_app:\n  from:\n    type: scratch\n", "layers my-app and my_app both become the Go name MyApp"},
		{"- a\n", "f.yaml:1: want a mapping of layer names to layers"},
		{"", "f.yaml: the file defines no layer"},
	} {
		_, err := Convert([]byte(tc.yaml), Options{File: "f.yaml"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a b  c`:              {"a", "b", "c"},
		`sh -c 'echo "hi"'`:   {"sh", "-c", `echo "hi"`},
		`"a b"c\ d`:           {"a bc d"},
		`x "\$y \n"`:          {"x", `$y \n`},
		``:                    nil,
		`'' empty`:            {"", "empty"},
		"one\ttwo\nthree":     {"one", "two", "three"},
		`/bin/app --flag=a\b`: {"/bin/app", "--flag=ab"},
	} {
		got, err := shellWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParse(t *testing.T) {
	f, err := Parse([]byte("config:\n  prerequisites:\n    - ../a/stacker.yaml\nz:\n  from: {type: scratch}\na:\n  from: {type: scratch}\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Layers, []string{"z", "a"}) || !slices.Equal(f.Prerequisites, []string{"../a/stacker.yaml"}) {
		t.Errorf("got %+v", f)
	}
}

// TestConvertAnchors: yaml anchors, aliases and merge keys, which stacker's
// parser reads, are expanded; a layer's own keys win over merged ones.
func TestConvertAnchors(t *testing.T) {
	r := convert(t, `common: &common
  from:
    type: scratch
  environment: &env
    A: "1"
  runtime_user: root
one:
  <<: *common
  runtime_user: app
  labels: *env
`, Options{})
	want := "var One = dsl.New(\"one\").\n" +
		"\tFrom(dsl.Scratch()).\n" +
		"\tEnv(\"A\", \"1\").\n" +
		"\tLabel(\"A\", \"1\").\n" +
		"\tUser(\"app\")\n"
	if !strings.Contains(string(r.Source), want) {
		t.Errorf("got:\n%s\nwant it to contain:\n%s", r.Source, want)
	}
}

// TestConvertPlaceholderPaths: a local path with a placeholder is still
// made relative to the Go file, the placeholder spliced in.
func TestConvertPlaceholderPaths(t *testing.T) {
	r := convert(t, `a:
  from:
    type: tar
    url: rootfs-${{ARCH:amd64}}.tar
  imports:
    - path: ${{CONF:/etc/app.conf}}
      dest: /etc/app.conf
`, Options{LocalPath: func(p string) string { return "../yaml/" + p }})
	for _, want := range []string{
		`From(dsl.Tarball("../yaml/rootfs-"+arch+".tar"))`,
		`Import(dsl.File(conf), "/etc/app.conf")`,
	} {
		if !strings.Contains(string(r.Source), want) {
			t.Errorf("output lacks %s:\n%s", want, r.Source)
		}
	}
}

// TestConvertImageName: a layer name strata refuses as an image name is
// made into one, and that is said.
func TestConvertImageName(t *testing.T) {
	r := convert(t, "My App:\n  from:\n    type: scratch\n", Options{})
	if !strings.Contains(string(r.Source), `var MyApp = dsl.New("my-app")`) ||
		!slices.ContainsFunc(r.Unsupported, func(s string) bool { return strings.Contains(s, "the image is my-app") }) {
		t.Errorf("got %q:\n%s", r.Unsupported, r.Source)
	}
}

// TestConvertLayerName: stacker sets STACKER_LAYER_NAME for the run
// script; a script that reads it gets it as a BuildEnv.
func TestConvertLayerName(t *testing.T) {
	r := convert(t, `a:
  from:
    type: scratch
  run: echo $STACKER_LAYER_NAME > /name
b:
  from:
    type: scratch
  build_env:
    X: "1"
  run: echo $STACKER_LAYER_NAME > /name
c:
  from:
    type: scratch
  run: true
d:
  from:
    type: scratch
  build_env:
    STACKER_LAYER_NAME: mine
  run: echo $STACKER_LAYER_NAME > /name
`, Options{})
	src := string(r.Source)
	for _, want := range []string{
		"\t// stacker sets it for the run script.\n\tBuildEnv(\"STACKER_LAYER_NAME\", \"a\")\n",
		"\tBuildEnv(\"X\", \"1\").\n",
		"\t// stacker sets it for the run script.\n\tBuildEnv(\"STACKER_LAYER_NAME\", \"b\")\n",
		"\tBuildEnv(\"STACKER_LAYER_NAME\", \"mine\")",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("output lacks %q:\n%s", want, src)
		}
	}
	if strings.Count(src, "STACKER_LAYER_NAME\"") != 3 {
		t.Errorf("only a and b get STACKER_LAYER_NAME, and d keeps its own:\n%s", src)
	}
}
