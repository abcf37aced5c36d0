package dsl

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// symlinkTree makes, under a new folder, a folder "root" full of symlinks
// to resolve (inside it, out of it, absolute, through "..", chains, a
// loop, dangling) and a file "outside" beside it. It returns the new
// folder.
func symlinkTree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	root := filepath.Join(top, "root")
	for _, d := range []string{"d/e"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"f": "x", "d/g": "gg", "d/e/h": "hhh", "../outside": "out"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"l-f":       "f",
		"l-d":       "d",
		"l-dd":      "l-d",
		"l-up":      "../outside",
		"l-abs":     filepath.Join(top, "outside"),
		"l-abs-in":  "/f", // f is in root, but / is not root
		"l-dotdot":  "d/../f",
		"l-dotdir":  "d/e/..",
		"l-slash":   "d/",
		"l-loop":    "l-loop",
		"l-nodir":   "f/x",
		"dangling":  "nothing",
		"d/l-back":  "../f",
		"d/l-esc":   "../../outside",
		"d/e/l-top": "../../l-d",
	}
	// c0 -> c1 -> ... -> c9 -> f: ten links from c0, eight from c2.
	for i := range 10 {
		links["c"+strconv.Itoa(i)] = "c" + strconv.Itoa(i+1)
	}
	links["c9"] = "f"
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return top
}

var symlinkNames = []string{
	".", "f", "d", "d/g", "d/e", "d/e/h", "l-f", "l-d", "l-d/g", "l-dd/g", "l-dd/e/h", "l-up", "l-abs", "l-abs-in",
	"l-dotdot", "l-dotdir", "l-dotdir/h", "l-slash", "l-slash/g", "l-loop", "l-nodir", "dangling", "missing", "f/x",
	"d/l-back", "d/l-esc", "l-d/l-back", "l-d/l-esc", "d/e/l-top", "d/e/l-top/g",
	"c0", "c1", "c2", "c3", "c9",
}

// TestRootFSResolvesAsOSRoot checks that rootFS over the operating
// system's file system finds, follows and refuses what an os.Root does.
func TestRootFSResolvesAsOSRoot(t *testing.T) {
	root := filepath.Join(symlinkTree(t), "root")
	osRoot, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer osRoot.Close()
	want := osRoot.FS().(interface {
		fs.StatFS
		fs.ReadDirFS
		fs.ReadLinkFS
	})
	got := newRootFS(osFS{}, root)
	describe := func(fi fs.FileInfo, err error) string {
		switch {
		case err != nil:
			return "error"
		case fi.IsDir():
			return fi.Mode().String()
		default:
			return fmt.Sprintf("%v %d", fi.Mode(), fi.Size())
		}
	}
	list := func(entries []fs.DirEntry, err error) string {
		if err != nil {
			return "error"
		}
		s := ""
		for _, e := range entries {
			s += e.Name() + ":" + e.Type().String() + " "
		}
		return s
	}
	link := func(target string, err error) string {
		if err != nil {
			return "error"
		}
		return target
	}
	for _, name := range symlinkNames {
		if g, w := describe(got.Stat(name)), describe(want.Stat(name)); g != w {
			t.Errorf("Stat(%q) = %s, os.Root: %s", name, g, w)
		}
		if g, w := describe(got.Lstat(name)), describe(want.Lstat(name)); g != w {
			t.Errorf("Lstat(%q) = %s, os.Root: %s", name, g, w)
		}
		if g, w := link(got.ReadLink(name)), link(want.ReadLink(name)); g != w {
			t.Errorf("ReadLink(%q) = %s, os.Root: %s", name, g, w)
		}
		if g, w := list(got.ReadDir(name)), list(want.ReadDir(name)); g != w {
			t.Errorf("ReadDir(%q) = %s, os.Root: %s", name, g, w)
		}
		f, gerr := got.Open(name)
		if gerr == nil {
			f.Close()
		}
		f, werr := want.Open(name)
		if werr == nil {
			f.Close()
		}
		if (gerr == nil) != (werr == nil) {
			t.Errorf("Open(%q): error %v, os.Root: %v", name, gerr, werr)
		}
	}
}

// TestEvalSymlinksAsFilepath checks evalSymlinks over the operating
// system's file system against filepath.EvalSymlinks, errors included.
func TestEvalSymlinksAsFilepath(t *testing.T) {
	top := symlinkTree(t)
	t.Chdir(top)
	paths := []string{"", ".", "..", "/", "root", "root/", "./root//d/../f", "root/../root/f", "outside"}
	for _, name := range symlinkNames {
		paths = append(paths, filepath.Join(top, "root", name), filepath.Join("root", name))
	}
	for _, p := range paths {
		want, werr := filepath.EvalSymlinks(p)
		got, gerr := evalSymlinks(osFS{}, p)
		if got != want || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Errorf("evalSymlinks(%q) = %q, %v; filepath.EvalSymlinks: %q, %v", p, got, gerr, want, werr)
		}
	}
}
