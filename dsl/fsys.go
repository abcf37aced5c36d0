package dsl

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/afero"
)

// This file holds what evaluation needs from a file system beyond
// afero.Fs: Lstat and Readlink where the file system has them, the
// equivalent of filepath.EvalSymlinks, and a folder read as an os.Root
// reads it. On afero.NewOsFs() each does what its os counterpart does.

// lstat describes name without following a final symlink when fsys can
// (afero.Lstater); otherwise it follows it, as Stat does.
func lstat(fsys afero.Fs, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(name)
		return fi, err
	}
	return fsys.Stat(name)
}

// readlink returns the target of the symlink name, if fsys can read
// symlinks (afero.LinkReader).
func readlink(fsys afero.Fs, name string) (string, error) {
	if r, ok := fsys.(afero.LinkReader); ok {
		return r.ReadlinkIfPossible(name)
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: afero.ErrNoReadlink}
}

// evalSymlinks gives the answer filepath.EvalSymlinks gives on Unix,
// reading fsys: path with every symlink in it replaced by its target,
// cleaned, and the errors of lstat and readlink on fsys where the os
// ones would come. It keeps two lists: the elements still to read, and
// those already resolved, which are real folders (the last may be a
// file), so ".." may simply drop the last of them.
func evalSymlinks(fsys afero.Fs, path string) (string, error) {
	abs := strings.HasPrefix(path, "/")
	todo := strings.Split(path, "/")
	var done []string
	links := 0
	for len(todo) > 0 {
		elem := todo[0]
		todo = todo[1:]
		switch {
		case elem == "" || elem == ".":
			continue
		case elem == ".." && (len(done) == 0 || done[len(done)-1] == ".."):
			if !abs { // above the working folder; "/.." is "/"
				done = append(done, elem)
			}
			continue
		case elem == "..":
			done = done[:len(done)-1]
			continue
		}
		at := joinElems(abs, append(done, elem))
		fi, err := lstat(fsys, at)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.IsDir() && len(todo) > 0 {
				return "", syscall.ENOTDIR // a file with more path after it
			}
			done = append(done, elem)
			continue
		}
		if links++; links > 255 {
			return "", errors.New("EvalSymlinks: too many links")
		}
		target, err := readlink(fsys, at)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			abs, done = true, nil
		}
		// The target is read from the folder that holds the link.
		todo = append(strings.Split(target, "/"), todo...)
	}
	return filepath.Clean(joinElems(abs, done)), nil
}

// joinElems joins path elements, under / when abs; "" for none of a
// relative path (filepath.Clean then makes it ".").
func joinElems(abs bool, elems []string) string {
	p := strings.Join(elems, "/")
	if abs {
		return "/" + p
	}
	return p
}

// rootFS is the folder root of fsys as an fs.FS that resolves symlinks as
// an os.Root does: it follows them within the folder only, never an
// absolute one nor one leading out of it, and at most rootMaxSymlinks for
// one name. The sandbox reads an import's folder through an os.Root, so
// ignore.Walk over a rootFS sees what the sandbox copies: a store tag
// that is a symlink out of the folder makes no store, as there.
//
// It implements what ignore.Walk and hashTree use: fs.StatFS,
// fs.ReadDirFS and fs.ReadLinkFS. Errors name the path relative to root.
//
// A rootFS is for one walk: it remembers which of its paths are folders,
// so that each name costs one Lstat of its last element rather than one
// of each element.
type rootFS struct {
	fsys afero.Fs
	root string
	dirs map[string]bool // slash-separated paths found to be folders
}

func newRootFS(fsys afero.Fs, root string) rootFS {
	return rootFS{fsys: fsys, root: root, dirs: map[string]bool{}}
}

// rootMaxSymlinks is the limit of os.Root (os.rootMaxSymlinks).
const rootMaxSymlinks = 8

// errPathEscapes is the error of an os.Root asked to leave its folder.
var errPathEscapes = errors.New("path escapes from parent")

// resolve returns the path in fsys of name, a slash-separated path
// relative to root, with its symlinks resolved inside root: all of them
// when follow is set, all but a final one otherwise. With follow, it also
// returns what Lstat said of the path's last element when it asked (nil
// when it did not: the path is root or a folder it knew).
func (r rootFS) resolve(op, name string, follow bool) (string, fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return "", nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	var fi fs.FileInfo
	parts := strings.Split(name, "/")
	links := 0
	for i := 0; i < len(parts); {
		switch parts[i] {
		case ".", "":
			parts = slices.Delete(parts, i, i+1)
			continue
		case "..":
			// parts[:i] are folders, not symlinks: ".." drops the last.
			if i == 0 {
				return "", nil, &fs.PathError{Op: op, Path: name, Err: errPathEscapes}
			}
			parts = slices.Delete(parts, i-1, i+1)
			i--
			fi = nil
			continue
		}
		fi = nil
		last := i == len(parts)-1
		if last && !follow {
			break
		}
		rel := strings.Join(parts[:i+1], "/")
		if r.dirs[rel] {
			i++
			continue
		}
		p := r.path(parts[:i+1])
		var err error
		if fi, err = lstat(r.fsys, p); err != nil {
			return "", nil, r.pathError(op, name, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			switch {
			case fi.IsDir():
				r.dirs[rel] = true
			case !last:
				return "", nil, &fs.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
			}
			i++
			continue
		}
		if links++; links > rootMaxSymlinks {
			return "", nil, &fs.PathError{Op: op, Path: name, Err: syscall.ELOOP}
		}
		target, err := readlink(r.fsys, p)
		if err != nil {
			return "", nil, r.pathError(op, name, err)
		}
		if target == "" || strings.HasPrefix(target, "/") {
			return "", nil, &fs.PathError{Op: op, Path: name, Err: errPathEscapes}
		}
		// The target's elements take the link's place, to be resolved
		// from where the link is.
		parts = slices.Concat(parts[:i], strings.Split(target, "/"), parts[i+1:])
	}
	return r.path(parts), fi, nil
}

func (r rootFS) path(parts []string) string {
	return filepath.Join(append([]string{r.root}, parts...)...)
}

// pathError names name, relative to root, in an error of fsys.
func (r rootFS) pathError(op, name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

func (r rootFS) Open(name string) (fs.File, error) {
	p, _, err := r.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	f, err := r.fsys.Open(p)
	if err != nil {
		return nil, r.pathError("open", name, err)
	}
	return f, nil
}

func (r rootFS) Stat(name string) (fs.FileInfo, error) {
	p, fi, err := r.resolve("stat", name, true)
	if err != nil || fi != nil {
		return fi, err
	}
	fi, err = r.fsys.Stat(p)
	if err != nil {
		return nil, r.pathError("stat", name, err)
	}
	return fi, nil
}

func (r rootFS) Lstat(name string) (fs.FileInfo, error) {
	p, _, err := r.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	fi, err := lstat(r.fsys, p)
	if err != nil {
		return nil, r.pathError("lstat", name, err)
	}
	return fi, nil
}

func (r rootFS) ReadLink(name string) (string, error) {
	p, _, err := r.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	target, err := readlink(r.fsys, p)
	if err != nil {
		return "", r.pathError("readlink", name, err)
	}
	return target, nil
}

// ReadDir lists a folder in name order, each entry described as Lstat
// describes it (afero.File.Readdir, like os.File.Readdir, does not follow
// symlinks).
func (r rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, _, err := r.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	f, err := r.fsys.Open(p)
	if err != nil {
		return nil, r.pathError("readdir", name, err)
	}
	defer f.Close()
	infos, err := f.Readdir(-1)
	if err != nil {
		return nil, r.pathError("readdir", name, err)
	}
	entries := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		entries[i] = fs.FileInfoToDirEntry(fi)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

var (
	_ fs.StatFS     = rootFS{}
	_ fs.ReadDirFS  = rootFS{}
	_ fs.ReadLinkFS = rootFS{}
)
