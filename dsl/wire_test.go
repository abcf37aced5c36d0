package dsl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
)

// roundTrip writes targets and reads them back, as the driver and the CLI
// do across a process boundary.
func roundTrip(t *testing.T, targets []dsl.Target) *dsl.Definitions {
	t.Helper()
	var buf bytes.Buffer
	if err := dsl.WriteDefinitions(&buf, "example.com/defs", targets); err != nil {
		t.Fatal(err)
	}
	defs, err := dsl.ReadDefinitions(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// Everything a definition can hold survives the hand-over: the evaluated
// graph (keys, key documents, configs, positions, dependencies) is the
// same on both sides.
func TestDefinitionsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := dsl.New("root").From(dsl.Scratch()).Run("echo root").Entrypoint()
	builder := dsl.New("builder").From(root).Run("make").BuildOnly().BuildEnv("CGO_ENABLED", "0").
		CacheMount("go", "/root/go").Secret("token", dsl.SecretEnv("TOKEN"))
	app := dsl.New("app").From(root).
		Import(dsl.File(filepath.Join(dir, "f.txt")), "/etc/f", dsl.Mode(0o600), dsl.Owner(1, 2)).
		Import(dsl.Dir(filepath.Join(dir, "d"), dsl.Exclude("*.log", "!keep.log")), "/d").
		Import(dsl.FromImage(builder, "/out/bin"), "/bin/app").
		Import(dsl.URL("https://example.com/x.tgz", strings.Repeat("ab", 32)), "/x/").
		Bind(dir, "/src", dsl.ReadOnly()).
		Bind(dir, "/keyed", dsl.ReadOnly(), dsl.ContentKey("f.txt")).
		Env("A", "1").Label("l", "v").Cmd("serve").WorkDir("/w").User("1:1").
		Tag("v1").LayerTypes(dsl.TarZstd, dsl.Squashfs)
	tarball := dsl.New("tb").From(dsl.Tarball("https://example.com/r.tar", dsl.SHA256(strings.Repeat("cd", 32)))).Run("true")
	pulled := dsl.New("pulled").From(dsl.Pull("docker://h/r@sha256:"+strings.Repeat("ef", 32), dsl.Insecure(), dsl.Platform("linux/arm64"))).Run("true")
	placeholder := dsl.New("ph").From(root).Import(dsl.File("${{WIRE_FILE:"+filepath.Join(dir, "f.txt")+"}}"), "/f")

	targets := []dsl.Target{{Var: "App", Doc: "App serves.", Image: app}, {Var: "Tb", Image: tarball},
		{Var: "Pulled", Image: pulled}, {Var: "Ph", Image: placeholder}}
	defs := roundTrip(t, targets)
	if defs.Package != "example.com/defs" || len(defs.Targets) != len(targets) {
		t.Fatalf("read %q with %d targets", defs.Package, len(defs.Targets))
	}
	if defs.Targets[0].Var != "App" || defs.Targets[0].Doc != "App serves." {
		t.Errorf("target 0 = %+v", defs.Targets[0])
	}
	evaluate := func(ts []dsl.Target) *dsl.Graph {
		var imgs []*dsl.Image
		for _, tg := range ts {
			imgs = append(imgs, tg.Image)
		}
		g, err := dsl.Evaluate(context.Background(), imgs, dsl.Options{Params: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	want, got := evaluate(targets), evaluate(defs.Targets)
	if len(want.Nodes) != len(got.Nodes) {
		t.Fatalf("%d nodes after the round trip, want %d", len(got.Nodes), len(want.Nodes))
	}
	for n, w := range want.Nodes {
		g := got.Nodes[n]
		if w.Name != g.Name || w.Key != g.Key {
			t.Errorf("node %d: %s %s, want %s %s", n, g.Name, g.Key, w.Name, w.Key)
		}
		if diff := cmp.Diff(string(w.KeyInputs), string(g.KeyInputs)); diff != "" {
			t.Errorf("%s: key inputs (-want +got):\n%s", w.Name, diff)
		}
		if diff := cmp.Diff(w.Config(ispec.ImageConfig{}), g.Config(ispec.ImageConfig{})); diff != "" {
			t.Errorf("%s: config (-want +got):\n%s", w.Name, diff)
		}
		if diff := cmp.Diff(w.Image.Steps(), g.Image.Steps(), cmp.Comparer(func(a, b dsl.Source) bool {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			return string(ja) == string(jb)
		})); diff != "" {
			t.Errorf("%s: steps (-want +got):\n%s", w.Name, diff)
		}
		for _, pair := range [][2]any{
			{w.Image.Defined(), g.Image.Defined()}, {w.Image.Binds(), g.Image.Binds()},
			{w.Image.CacheMounts(), g.Image.CacheMounts()}, {w.Image.Secrets(), g.Image.Secrets()},
			{w.Image.Tags(), g.Image.Tags()}, {w.Image.OwnLayerTypes(), g.Image.OwnLayerTypes()},
			{w.Image.IsBuildOnly(), g.Image.IsBuildOnly()}, {w.LayerTypes, g.LayerTypes}, {w.Volatile, g.Volatile},
		} {
			// Unexported fields too: what a path was written as must travel.
			if diff := cmp.Diff(pair[0], pair[1], cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
				t.Errorf("%s: (-want +got):\n%s", w.Name, diff)
			}
		}
	}
	// A base shared by two images is still one value: one node.
	if got.Node("app").Parent != got.Node("root") || got.Node("builder").Parent != got.Node("root") {
		t.Error("the shared base became two values")
	}
	// Entrypoint() clears the inherited entrypoint; that is not "unset".
	if cfg := got.Node("root").Config(ispec.ImageConfig{Entrypoint: []string{"/old"}}); len(cfg.Entrypoint) != 0 {
		t.Errorf("cleared entrypoint came back as %q", cfg.Entrypoint)
	}
	// A placeholder in a path is expanded on the reading side.
	ph, err := dsl.Evaluate(context.Background(), []*dsl.Image{defs.Targets[3].Image}, dsl.Options{Params: map[string]string{"WIRE_FILE": "/etc/hostname"}})
	if err != nil {
		t.Fatal(err)
	}
	def, err := dsl.Evaluate(context.Background(), []*dsl.Image{defs.Targets[3].Image}, dsl.Options{Params: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	// /etc/hostname and f.txt differ, so the import's digest, and the
	// key, follow the parameter only if the path was expanded here.
	if ph.Node("ph").Key == def.Node("ph").Key {
		t.Errorf("the placeholder in the import path was not expanded after the round trip: both keys are %s", def.Node("ph").Key)
	}
}

// Problems found while a definition was made travel with it, with their
// Go positions.
func TestDefinitionsCarryErrors(t *testing.T) {
	bad := dsl.New("Bad").From(dsl.Scratch()).Run("")
	line := thisLine() - 1
	defs := roundTrip(t, []dsl.Target{{Var: "Bad", Image: bad}})
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{defs.Targets[0].Image}, dsl.Options{Params: map[string]string{}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"wire_test.go:" + itoa(line), `image name "Bad"`, "script is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// A format this strata does not know is refused, naming both versions and
// what to run instead.
func TestDefinitionsOfAnotherFormat(t *testing.T) {
	doc := `{"format": 999, "writer": "v9.9.9", "package": "example.com/defs", "targets": []}`
	_, err := dsl.ReadDefinitions(strings.NewReader(doc))
	var fe *dsl.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *dsl.FormatError", err)
	}
	for _, want := range []string{"example.com/defs", "v9.9.9", "format 999", "reads format 1", "go tool strata", "cmd/strata@v9.9.9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// A checkout has no version to install.
	_, err = dsl.ReadDefinitions(strings.NewReader(`{"format": 999, "writer": "(devel)", "package": "p"}`))
	if err == nil || strings.Contains(err.Error(), "@(devel)") || !strings.Contains(err.Error(), "go tool strata") {
		t.Errorf("format error of a checkout: %v", err)
	}
	// A field this version does not know is a format change nobody
	// announced: refused rather than ignored.
	_, err = dsl.ReadDefinitions(strings.NewReader(`{"format": 1, "package": "p", "targets": [], "images": [], "extra": 1}`))
	if err == nil || !strings.Contains(err.Error(), "extra") || !strings.Contains(err.Error(), "go tool strata") {
		t.Errorf("unknown field: err = %v", err)
	}
}

// A layer type is decoded as the writer wrote it, by its canonical name:
// an alias or an unknown name is another writer's, refused when the
// definitions are read rather than when the layer is encoded.
func TestDefinitionsLayerTypesAreCanonical(t *testing.T) {
	img := dsl.New("img").From(dsl.Scratch()).Run("true").LayerTypes(dsl.TarZstd)
	var buf bytes.Buffer
	if err := dsl.WriteDefinitions(&buf, "example.com/defs", []dsl.Target{{Var: "Img", Image: img}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"layerTypes":["tar+zstd"]`) {
		t.Fatalf("layer types not written by their canonical names: %s", buf.String())
	}
	for _, bad := range []string{"zstd", "tar+bzip2", ""} {
		doc := strings.Replace(buf.String(), `"tar+zstd"`, `"`+bad+`"`, 1)
		if _, err := dsl.ReadDefinitions(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), `"`+bad+`" is not a layer type`) {
			t.Errorf("layer type %q: err = %v", bad, err)
		}
	}
}
