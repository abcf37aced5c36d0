package sandbox

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/strata-build/strata/internal/ignore"
	"github.com/strata-build/strata/internal/imagepath"
	"github.com/strata-build/strata/internal/overlayfs"
)

// prepareImports makes the sources of the copy steps readable to the run
// steps at imagepath.Imports/BASE, as stacker's /stacker/imports: a step
// can unpack an imported archive or run an imported installer without
// first copying it into the image. The mount points are created in the stage's steps
// folder, which the container sees at /.strata, so they never reach the
// upper dir. A source that does not exist is left to the copy step, which
// reports it with the step's position.
//
// Copy steps may share a base name (one file copied to two places, or two
// files of one name, as stacker's import matrix does): each is copied, and
// imagepath.Imports/NAME shows the last of them, with that step's
// exclusions. That is what stacker shows, which copies its imports one
// after the other into /stacker/imports, a later one over an earlier one
// of the same name.
//
// What the copy of a folder leaves out (Copy.Exclude, .git, stores,
// layouts) is hidden from that view too, when a step can look: masks
// holds a whiteout for each such entry (see importMask), laid over the
// source in a read-only overlay. On error, the masks made are removed;
// otherwise the caller removes them (removeMasks).
func prepareImports(cs *childSpec, steps []Step) (err error) {
	defer func() {
		if err != nil {
			removeMasks(cs)
		}
	}()
	runs := slices.ContainsFunc(steps, func(st Step) bool { return st.Copy == nil })
	last := map[string]int{} // base name -> index of the last copy step of that name
	for i, st := range steps {
		if st.Copy != nil {
			last[filepath.Base(filepath.Clean(st.Copy.Source))] = i
		}
	}
	for i, st := range steps {
		if st.Copy == nil {
			continue
		}
		src := filepath.Clean(st.Copy.Source)
		name := filepath.Base(src)
		if last[name] != i {
			continue
		}
		fi, err := os.Stat(src)
		if err != nil || !(fi.IsDir() || fi.Mode().IsRegular()) {
			continue
		}
		dir := filepath.Join(cs.StepsDir, strings.TrimPrefix(imagepath.Imports, "/.strata/"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		point := filepath.Join(dir, name)
		if fi.IsDir() {
			err = os.Mkdir(point, 0o755)
		} else {
			err = os.WriteFile(point, nil, 0o644)
		}
		if err != nil {
			return err
		}
		bind := importBind{Source: src, Name: name, Dir: fi.IsDir()}
		if fi.IsDir() && runs {
			bind.Mask = importMask(src, st.Copy.Exclude)
		}
		cs.Imports = append(cs.Imports, bind)
	}
	return nil
}

// removeMasks removes the masks prepareImports made.
func removeMasks(cs *childSpec) {
	for _, im := range cs.Imports {
		if im.Mask != "" {
			removeMask(im.Mask)
		}
	}
}

// importMask makes the top layer of a read-only overlay that shows the
// folder src without what its copy leaves out: a whiteout (a 0/0
// character device, which needs no privilege to create) for each left-out
// entry, in folders that carry the modes, owners and times of the
// source's (an overlay shows a folder as its topmost layer has it).
//
// The mask is a new folder of os.TempDir(), not of the stage: the stage
// is in the store, which is often inside the imported folder (dsl.Dir of
// the module root), and overlayfs refuses a layer inside another.
//
// It returns "" when nothing is left out, or when the mask cannot be made:
// the view is a convenience for the steps, and the copy itself, which
// never reads the mask, reports any problem with the source.
func importMask(src string, exclude []string) string {
	m, err := ignore.Compile(exclude)
	if err != nil {
		return ""
	}
	r, err := os.OpenRoot(src)
	if err != nil {
		return ""
	}
	defer r.Close()
	mask, err := os.MkdirTemp("", "strata-import-mask-")
	if err != nil {
		return ""
	}
	made := map[string]bool{".": true}
	dirs := []string{"."} // in the order made: parents first
	leftOut := false
	mkdir := func(name string) error {
		if made[name] {
			return nil
		}
		made[name] = true
		dirs = append(dirs, name)
		return os.Mkdir(filepath.Join(mask, filepath.FromSlash(name)), 0o700)
	}
	err = ignore.WalkLeftOut(r.FS(), m, func(name string, _ fs.DirEntry) error {
		parent := path.Dir(name)
		for i := range len(parent) {
			if parent[i] == '/' {
				if err := mkdir(parent[:i]); err != nil {
					return err
				}
			}
		}
		if err := mkdir(parent); err != nil {
			return err
		}
		leftOut = true
		return overlayfs.MakeWhiteout(filepath.Join(mask, filepath.FromSlash(name)))
	})
	if err != nil || !leftOut {
		removeMask(mask)
		return ""
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := copyDirAttrs(r, dirs[i], filepath.Join(mask, filepath.FromSlash(dirs[i]))); err != nil {
			removeMask(mask)
			return ""
		}
	}
	return mask
}

// removeMask removes a mask, whose folders may have been given the
// read-only modes of the source's.
func removeMask(mask string) {
	filepath.WalkDir(mask, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(mask)
}

// copyDirAttrs gives the mask folder dst the mode, owner and times of the
// source folder name. The owner is kept only where the caller may give it
// (rootless, the caller owns what it imports).
func copyDirAttrs(r *os.Root, name, dst string) error {
	fi, err := r.Lstat(name)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	if err := os.Chmod(dst, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}
