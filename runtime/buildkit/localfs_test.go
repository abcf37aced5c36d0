package buildkit

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-build/strata/dsl"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func walked(t *testing.T, f interface {
	Walk(context.Context, string, fs.WalkDirFunc) error
}) []string {
	t.Helper()
	var names []string
	err := f.Walk(context.Background(), "/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// What the session sends of a folder is what the local copy takes: the
// import's patterns, with re-inclusion, and never .git.
func TestLocalFSLeavesOutWhatTheLocalCopyDoes(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"main.txt": "m", "a.log": "x", "keep.log": "k", "sub/s.txt": "s", "sub/b.log": "x",
		"node_modules/x/i.js": "x", ".git/HEAD": "x",
	})
	f, _, err := localFS(&dsl.LocalSource{Path: root, Exclude: []string{"*.log", "!keep.log", "node_modules/"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"keep.log", "main.txt", "sub", "sub/s.txt"}
	if got := walked(t, f); !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if _, err := f.Open("a.log"); err == nil {
		t.Error("an excluded file opens")
	}
	r, err := f.Open("keep.log")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, _ := io.ReadAll(r); string(b) != "k" {
		t.Errorf("keep.log reads %q", b)
	}
}

// A file import sends that file alone, through a symlink to it too.
func TestLocalFSOfAFile(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"note.txt": "n", "other.txt": "o"})
	if err := os.Symlink(filepath.Join(root, "note.txt"), filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"note.txt", "link.txt"} {
		f, file, err := localFS(&dsl.LocalSource{Path: filepath.Join(root, p)}, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := walked(t, f); !slices.Equal(got, []string{"note.txt"}) || file != "/note.txt" {
			t.Errorf("%s: sent %v, the file at %s", p, got, file)
		}
	}
}
