package dsl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/dsl"
)

// A bind keyed by its content keeps the image cacheable: its key follows
// the content (or the key paths alone), and an image on it is not
// volatile; an unkeyed bind still is.
func TestBindContentKey(t *testing.T) {
	tool := t.TempDir()
	os.WriteFile(filepath.Join(tool, "VERSION"), []byte("go1.0\n"), 0o644)
	os.MkdirAll(filepath.Join(tool, "bin"), 0o755)
	os.WriteFile(filepath.Join(tool, "bin", "go"), []byte("v1"), 0o755)
	eval := func(opts ...dsl.BindOption) *dsl.Node {
		t.Helper()
		img := dsl.New("b").From(dsl.Scratch()).Bind(tool, "/tool", opts...).Run("true")
		child := dsl.New("c").From(img).Run("true")
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{child}, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if g.Node("c").Volatile != g.Node("b").Volatile {
			t.Errorf("c.Volatile = %v, b.Volatile = %v: an image on a volatile one must be volatile, and only then", g.Node("c").Volatile, g.Node("b").Volatile)
		}
		return g.Node("b")
	}
	if n := eval(dsl.ReadOnly()); !n.Volatile {
		t.Error("an unkeyed bind did not make the image volatile")
	}
	whole, versioned := eval(dsl.ReadOnly(), dsl.ContentKey()), eval(dsl.ReadOnly(), dsl.ContentKey("VERSION"))
	if whole.Volatile || versioned.Volatile {
		t.Fatal("a bind keyed by its content made the image volatile")
	}
	if whole.Key == versioned.Key {
		t.Error("keying by the whole bind and by VERSION gave one key")
	}
	if again := eval(dsl.ReadOnly(), dsl.ContentKey()); again.Key != whole.Key {
		t.Error("the same content gave another key")
	}

	// bin/go changes: the whole-bind key follows, the VERSION key does not.
	os.WriteFile(filepath.Join(tool, "bin", "go"), []byte("v2"), 0o755)
	if eval(dsl.ReadOnly(), dsl.ContentKey()).Key == whole.Key {
		t.Error("the whole-bind key ignored a changed file")
	}
	if eval(dsl.ReadOnly(), dsl.ContentKey("VERSION")).Key != versioned.Key {
		t.Error("the VERSION key changed with a file outside VERSION")
	}
	os.WriteFile(filepath.Join(tool, "VERSION"), []byte("go1.1\n"), 0o644)
	if eval(dsl.ReadOnly(), dsl.ContentKey("VERSION")).Key == versioned.Key {
		t.Error("the VERSION key ignored a new VERSION")
	}
}

func TestBindContentKeyErrors(t *testing.T) {
	tool := t.TempDir()
	for _, tc := range []struct {
		name string
		opts []dsl.BindOption
		want string
	}{
		{"writable", []dsl.BindOption{dsl.ContentKey()}, "ContentKey needs ReadOnly"},
		{"absolute path", []dsl.BindOption{dsl.ReadOnly(), dsl.ContentKey("/VERSION")}, `ContentKey path "/VERSION" must be relative`},
		{"climbs out", []dsl.BindOption{dsl.ReadOnly(), dsl.ContentKey("../x")}, `ContentKey path "../x" must be relative`},
		{"missing path", []dsl.BindOption{dsl.ReadOnly(), dsl.ContentKey("VERSION")}, "content key: key path VERSION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := thisLine() + 1
			img := dsl.New("b").From(dsl.Scratch()).Bind(tool, "/tool", tc.opts...)
			_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("bind_test.go:%d", line)) {
				t.Errorf("got %v, want %q at bind_test.go:%d", err, tc.want, line)
			}
		})
	}
}

// A build-only builder that uses the host's Go toolchain through a
// read-only bind, keyed by the toolchain's VERSION file: it is cached
// like any other image and rebuilt when the toolchain is upgraded.
func ExampleContentKey() {
	goroot, _ := os.MkdirTemp("", "goroot-")
	defer os.RemoveAll(goroot)
	os.WriteFile(filepath.Join(goroot, "VERSION"), []byte("go1.26.0\n"), 0o644)

	builder := dsl.New("go-builder").
		From(dsl.Scratch()).
		Bind(goroot, "/usr/local/go", dsl.ReadOnly(), dsl.ContentKey("VERSION")).
		Run("/usr/local/go/bin/go build -o /out/app ./src").
		BuildOnly()
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{builder}, dsl.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("rebuilt at every build:", g.Node("go-builder").Volatile)
	// Output: rebuilt at every build: false
}
