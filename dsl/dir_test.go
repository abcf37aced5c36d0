package dsl_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/ignore"
)

// tree writes files (path -> content) under a new folder.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		write(t, filepath.Join(dir, name), content)
	}
	return dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dirKey(t *testing.T, src dsl.Source) digest.Digest {
	t.Helper()
	img := dsl.New("x").From(dsl.Scratch()).Import(src, "/x")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g.Node("x").Key
}

// TestExcludedFilesAreNotInTheKey changes one file at a time: the key
// must change exactly when that file is imported.
func TestExcludedFilesAreNotInTheKey(t *testing.T) {
	files := map[string]string{
		"main.go":                    "package main",
		"app.log":                    "log",
		"keep.log":                   "log",
		"sub/deep/trace.log":         "log",
		"node_modules/left/index.js": "x",
		"web/node_modules/x.js":      "x",
		"node_modules.txt":           "x",
		"build/out":                  "x",
		"build/keep":                 "x",
		"src/build/out":              "x",
		"docs/a.md":                  "x",
		"src/docs/a.md":              "x",
		"a?c":                        "x",
		".git/HEAD":                  "ref: refs/heads/main",
		"sub/.git":                   "gitdir: ../.git/worktrees/sub",
		".strata/" + ignore.StoreTag: ignore.StoreTagText,
		".strata/layers/1/f":         "x",
		"oci/oci-layout":             `{"imageLayoutVersion":"1.0.0"}`,
		"oci/index.json":             `{}`,
		"oci/blobs/sha256/0":         "x",
		"cache/" + ignore.StoreTag:   "Signature: 8a477f597d28d172789f06886806bc55\n# another tool's cache\n",
		"cache/x":                    "x",
	}
	patterns := []string{"*.log", "!keep.log", "node_modules/", "/build/**", "!/build/keep", "/docs/"}
	tests := []struct {
		file     string
		imported bool
	}{
		{"main.go", true},
		{"app.log", false},
		{"keep.log", true},
		{"sub/deep/trace.log", false},
		{"node_modules/left/index.js", false},
		{"web/node_modules/x.js", false},
		{"node_modules.txt", true},
		{"build/out", false},
		{"build/keep", true},
		{"src/build/out", true}, // /build is anchored
		{"docs/a.md", false},
		{"src/docs/a.md", true},
		{".git/HEAD", false},
		{"sub/.git", false},
		{".strata/layers/1/f", false},
		{"oci/blobs/sha256/0", false},
		{"oci/index.json", false},
		{"cache/x", true}, // not a strata store
	}
	dir := tree(t, files)
	src := func() dsl.Source { return dsl.Dir(dir, dsl.Exclude(patterns...)) }
	for _, tt := range tests {
		before := dirKey(t, src())
		write(t, filepath.Join(dir, tt.file), "changed "+tt.file)
		after := dirKey(t, src())
		if changed := before != after; changed != tt.imported {
			t.Errorf("changing %s: key changed = %v, want %v", tt.file, changed, tt.imported)
		}
	}

	// A new excluded folder changes nothing; removing one neither.
	before := dirKey(t, src())
	write(t, filepath.Join(dir, "x/node_modules/y/z.js"), "x")
	os.RemoveAll(filepath.Join(dir, "node_modules"))
	if dirKey(t, src()) == before {
		t.Error("adding x/ (a folder holding only an excluded folder) kept the key")
	}
	os.RemoveAll(filepath.Join(dir, "x"))
	if dirKey(t, src()) != before {
		t.Error("removing an excluded folder changed the key")
	}
}

// TestDirOfAStoreOrLayoutImportsIt checks that the implicit skips apply
// below the imported folder only.
func TestDirOfAStoreOrLayoutImportsIt(t *testing.T) {
	dir := tree(t, map[string]string{
		"oci-layout":   `{"imageLayoutVersion":"1.0.0"}`,
		"index.json":   `{}`,
		"blobs/sha256": "x",
	})
	before := dirKey(t, dsl.Dir(dir))
	write(t, filepath.Join(dir, "blobs/sha256"), "y")
	if dirKey(t, dsl.Dir(dir)) == before {
		t.Error("a Dir of an OCI layout ignored a change to one of its blobs")
	}
}

func TestExcludeIsKeptInOrder(t *testing.T) {
	src := dsl.Dir(".", dsl.Exclude("a", "b"), dsl.Exclude("!c")).(*dsl.LocalSource)
	if got := strings.Join(src.Exclude, " "); got != "a b !c" {
		t.Errorf("Exclude = %q", got)
	}
	if src := dsl.Dir(".").(*dsl.LocalSource); src.Exclude != nil {
		t.Errorf("Dir without options: Exclude = %q", src.Exclude)
	}
}

func TestBadExcludePatternNamesTheDirCall(t *testing.T) {
	dir := tree(t, map[string]string{"f": "x"})
	src, line := dsl.Dir(dir, dsl.Exclude("*.log", "[a-")), thisLine()
	img := dsl.New("x").From(dsl.Scratch()).Import(src, "/x")
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	if err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
	for _, want := range []string{"dir_test.go:" + strconv.Itoa(line), `"[a-"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
