package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/internal/ignore"
)

// TestDirExcludes imports a folder laid out like a repository's root: a
// .git, a worktree's .git file, logs, node_modules, another store, and the
// build's own store (.strata) and output layout (oci) inside it. The layer
// holds what the patterns keep and nothing of the rest, the steps see
// the import so too, and a change to
// what is left out (the build writing its store and layout included)
// rebuilds nothing.
func TestDirExcludes(t *testing.T) {
	needRoot(t)
	tree := filepath.Join(t.TempDir(), "tree")
	files := map[string]string{
		"main.txt":                          "main\n",
		"app.log":                           "log\n",
		"keep.log":                          "kept\n",
		"sub/b.txt":                         "b\n",
		"sub/trace.log":                     "log\n",
		"sub/.git":                          "gitdir: ../.git/worktrees/sub\n",
		"node_modules/x/index.js":           "x\n",
		"web/node_modules/y.js":             "y\n",
		"web/app.js":                        "app\n",
		".git/HEAD":                         "ref: refs/heads/main\n",
		".git/objects/00/abc":               "x",
		"nested/.strata/" + ignore.StoreTag: ignore.StoreTagText,
		"nested/.strata/layers/x":           "x",
		"nested/readme":                     "r\n",
	}
	for name, content := range files {
		p := filepath.Join(tree, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := newSourcesBuild(t, "dirs")
	b.store, b.layout = filepath.Join(tree, ".strata"), filepath.Join(tree, "oci")
	set := []string{"--set", "TREE=" + tree}

	mustStrata(t, b.dir, b.args("build", set...)...)
	m, _ := image(t, b.layout, "tree")
	entries := layerEntries(t, b.layout, m.Layers[len(m.Layers)-1])
	for _, want := range []string{"main.txt", "keep.log", "sub/b.txt", "web/app.js", "nested/readme"} {
		if entries["srv/tree/"+want] == nil {
			t.Errorf("layer lacks srv/tree/%s; has %v", want, keys(entries))
		}
	}
	for name := range entries {
		rel, ok := strings.CutPrefix(name, "srv/tree/")
		if !ok {
			continue
		}
		for _, left := range []string{"app.log", "sub/trace.log", "sub/.git", "node_modules", "web/node_modules", ".git", ".strata", "oci", "nested/.strata"} {
			if rel == left || strings.HasPrefix(rel, left+"/") {
				t.Errorf("layer holds %s, which the import leaves out", name)
			}
		}
	}

	// The steps' view of the import leaves out the same.
	seen := mustStrata(t, b.dir, "run", "--store", b.store, "--layout", b.layout, "tree", "--", "/bin/cat", "/seen")
	if want := "/.strata/imports/tree:\nkeep.log\nmain.txt\nnested\nsub\nweb\n\n/.strata/imports/tree/sub:\nb.txt\n"; seen != want {
		t.Errorf("a step sees the import as\n%s\nwant\n%s", seen, want)
	}

	// The store and layout now hold the build; a log and a .git changed:
	// nothing to rebuild.
	os.WriteFile(filepath.Join(tree, "app.log"), []byte("more log\n"), 0o644)
	os.WriteFile(filepath.Join(tree, ".git/HEAD"), []byte("ref: refs/heads/other\n"), 0o644)
	out := mustStrata(t, b.dir, b.args("build", set...)...)
	if !strings.Contains(out, "tree: cached") {
		t.Errorf("rebuild after changing only what is left out:\n%s", out)
	}
	os.WriteFile(filepath.Join(tree, "keep.log"), []byte("changed\n"), 0o644)
	out = mustStrata(t, b.dir, b.args("build", set...)...)
	if !strings.Contains(out, "tree: building") {
		t.Errorf("rebuild after changing keep.log:\n%s", out)
	}
}
