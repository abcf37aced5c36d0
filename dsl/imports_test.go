package dsl_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-build/strata/dsl"
)

// TestImportsSharingABaseName evaluates what stacker's import matrix
// does: one file imported to two destinations, two different files with
// one base name, and a local file beside a FromImage file of the same
// base name. Each import keeps its own digest; none is refused for the
// name they would share under dsl.ImportDir.
func TestImportsSharingABaseName(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"a.txt": "local", "other/a.txt": "other"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local, other := filepath.Join(dir, "a.txt"), filepath.Join(dir, "other/a.txt")
	producer := dsl.New("producer").From(dsl.Scratch()).Run("echo image > /a.txt").BuildOnly()
	for _, c := range []struct {
		name string
		img  *dsl.Image
	}{
		{"same file twice", dsl.New("twice").From(dsl.Scratch()).
			Import(dsl.File(local), "/x").
			Import(dsl.File(local), "/y")},
		{"two files, one name", dsl.New("two").From(dsl.Scratch()).
			Import(dsl.File(local), "/x").
			Import(dsl.File(other), "/y")},
		{"local beside FromImage", dsl.New("beside").From(dsl.Scratch()).
			Import(dsl.File(local), "/x").
			Import(dsl.FromImage(producer, "/a.txt"), "/y")},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := dsl.Evaluate(context.Background(), []*dsl.Image{c.img}, dsl.Options{})
			if err != nil {
				t.Fatal(err)
			}
			n := g.Node(c.img.Name())
			// A FromImage import has its image's node, every other one a
			// content digest.
			var ids []string
			for idx := range 2 {
				switch {
				case n.Imports[idx] != "":
					ids = append(ids, n.Imports[idx].String())
				case n.ImportNodes[idx] != nil:
					ids = append(ids, "image "+n.ImportNodes[idx].Name)
				}
			}
			if len(ids) != 2 || len(n.Imports)+len(n.ImportNodes) != 2 {
				t.Fatalf("import digests %v and images %v, want one for each of the two imports", n.Imports, n.ImportNodes)
			}
			same := ids[0] == ids[1]
			if want := c.name == "same file twice"; same != want {
				t.Errorf("the two imports have the same digest: %v, want %v (%v)", same, want, n.Imports)
			}
			if c.name == "local beside FromImage" && !slices.Contains(n.Deps, g.Node("producer")) {
				t.Errorf("the FromImage import does not depend on its image: deps %v", n.Deps)
			}
		})
	}
}

// The in-image folders are public API, and their docs name them.
func TestInImageFolders(t *testing.T) {
	if dsl.ImportDir != "/.strata/imports" || dsl.SecretDir != "/run/secrets" {
		t.Errorf("ImportDir %q, SecretDir %q: update their docs", dsl.ImportDir, dsl.SecretDir)
	}
}
