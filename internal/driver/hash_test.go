package driver

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInputKeySymlinks: a definitions package may hold symlinks, to a
// folder (test data kept elsewhere) as well as to a file. Hashing must not
// read a folder as a file, a file reached through a link is hashed by its
// content, and where a link points is part of the key.
func TestInputKeySymlinks(t *testing.T) {
	t.Setenv("GOWORK", "")
	root := writeTree(t, t.TempDir(), map[string]string{
		"main/go.mod":             "module example.com/main\n\ngo 1.26\n",
		"main/images/a.go":        "package images\n\nimport _ \"embed\"\n\n//go:embed files\nvar files string\n",
		"main/images/files/x":     "one",
		"main/shared/data/f":      "data",
		"main/shared/other/f":     "other",
		"main/shared/config.yaml": "one",
	})
	dir := filepath.Join(root, "main", "images")
	link := func(target, name string) {
		os.Remove(filepath.Join(dir, name))
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("../shared/data", "data")               // a folder beside the Go files
	link("../../shared/data", "files/data")      // a folder inside the embedded tree
	link("../shared/config.yaml", "config.yaml") // a file
	link("../shared/missing", "dangling")        // nothing
	key := func() string { return keyOf(t, dir) }
	before := key()
	if again := key(); again != before {
		t.Fatal("key is not stable")
	}
	writeTree(t, root, map[string]string{"main/shared/config.yaml": "two"})
	edited := key()
	if edited == before {
		t.Error("editing a file reached through a symlink did not change the key")
	}
	link("../shared/other", "data")
	if key() == edited {
		t.Error("pointing a symlink at another folder did not change the key")
	}
}
