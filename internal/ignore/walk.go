package ignore

import (
	"io"
	"io/fs"
	"path"
)

// StoreTag is the file a strata store writes at its root so that imports
// of a folder holding the store skip it. It is a cache directory tag
// (https://bford.info/cachedir/), which backup tools (tar
// --exclude-caches, restic, borg) honour too.
const StoreTag = "CACHEDIR.TAG"

// StoreTagText is the content of StoreTag. Only a tag that starts with
// these two lines marks a store: other tools' cache folders are imported
// as any folder.
const StoreTagText = storeTagHead + "# For information about cache directory tags, see https://bford.info/cachedir/\n"

const storeTagHead = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This folder is a strata store: imports of a folder that holds it skip it.\n"

// Walk walks the folder fsys in lexical order, as fs.WalkDir does, and
// calls fn for the root "." and for every entry an import of the folder
// keeps. It leaves out, and does not enter:
//
//   - the entries m excludes (see [Compile]);
//   - below the root, any entry named .git (the folder, or the file a
//     worktree or submodule has in its place);
//   - below the root, any folder that is a strata store (holds [StoreTag]
//     with [StoreTagText]) or an OCI image layout (holds both oci-layout
//     and index.json): the store and the output layout of a module never
//     end up in an image that imports the module's root.
//
// The root itself is never left out: importing a store or a layout by its
// own path imports it.
func Walk(fsys fs.FS, m *Matcher, fn fs.WalkDirFunc) error {
	return walk(fsys, m, fn, func(string, fs.DirEntry) error { return nil })
}

// WalkLeftOut walks fsys as Walk does and calls fn for each entry Walk
// leaves out (a folder is reported, not entered). The sandbox uses it to
// hide those entries from the steps' view of an import.
func WalkLeftOut(fsys fs.FS, m *Matcher, fn func(name string, d fs.DirEntry) error) error {
	return walk(fsys, m, func(_ string, _ fs.DirEntry, err error) error { return err }, fn)
}

func walk(fsys fs.FS, m *Matcher, kept fs.WalkDirFunc, left func(string, fs.DirEntry) error) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if name != "." && d != nil && leftOut(fsys, m, name, d) {
			if err := left(name, d); err != nil {
				return err
			}
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		return kept(name, d, err)
	})
}

func leftOut(fsys fs.FS, m *Matcher, name string, d fs.DirEntry) bool {
	if m.Excluded(name, d.IsDir()) || d.Name() == ".git" {
		return true
	}
	return d.IsDir() && (isStore(fsys, name) || isLayout(fsys, name))
}

func isStore(fsys fs.FS, dir string) bool {
	tag := path.Join(dir, StoreTag)
	// Stat first: opening a FIFO of that name would block.
	if fi, err := fs.Stat(fsys, tag); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := fsys.Open(tag)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(storeTagHead))
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == storeTagHead
}

func isLayout(fsys fs.FS, dir string) bool {
	for _, f := range []string{"oci-layout", "index.json"} {
		fi, err := fs.Stat(fsys, path.Join(dir, f))
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}
