package dsl

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// This file holds the file system evaluation reads local sources from,
// by the absolute paths the definitions resolved: the operating system's
// (osFS), or the io/fs.FS a test gives in Options.FS (ioFS); then the
// equivalent of filepath.EvalSymlinks over it, and a folder read as an
// os.Root reads it.
//
// The seam is io/fs rather than afero's interface on purpose: every
// driver links dsl, and afero's root package (its HTTP file system among
// others) doubled the packages a driver links, slowing each edit-to-build
// by about half and adding modules to every user's go.mod. An afero.Fs
// plugs in through the dsl/aferofs adapter, which only tests import.

// sourceFS is what evaluation reads.
type sourceFS interface {
	Open(name string) (fs.File, error)
	Stat(name string) (fs.FileInfo, error)
	// Lstat describes name without following a final symlink.
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
}

// osFS is the operating system's files, with the os package's errors.
type osFS struct{}

func (osFS) Open(name string) (fs.File, error)      { return os.Open(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)  { return os.Stat(name) }
func (osFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(name) }
func (osFS) ReadLink(name string) (string, error)   { return os.Readlink(name) }

// ioFS reads an io/fs.FS that holds absolute paths without their leading
// slash, as os.DirFS("/") does. Its errors name the absolute path, as
// osFS's do. Without fs.ReadLinkFS it has no symlinks (Lstat is Stat).
type ioFS struct{ fsys fs.FS }

func (f ioFS) Open(name string) (fs.File, error) {
	file, err := f.fsys.Open(unrooted(name))
	return file, absError(name, err)
}

func (f ioFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := fs.Stat(f.fsys, unrooted(name))
	return fi, absError(name, err)
}

func (f ioFS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := fs.Lstat(f.fsys, unrooted(name))
	return fi, absError(name, err)
}

func (f ioFS) ReadLink(name string) (string, error) {
	target, err := fs.ReadLink(f.fsys, unrooted(name))
	return target, absError(name, err)
}

// unrooted is the io/fs name of the absolute path name.
func unrooted(name string) string {
	if rel := strings.TrimPrefix(filepath.Clean(name), "/"); rel != "" {
		return rel
	}
	return "."
}

// absError names name in err, a *fs.PathError of its io/fs name.
func absError(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

// readFile reads the whole file name.
func readFile(fsys sourceFS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// evalSymlinks gives the answer filepath.EvalSymlinks gives on Unix,
// reading fsys: path with every symlink in it replaced by its target,
// cleaned, and the errors of lstat and readlink on fsys where the os
// ones would come. It keeps two lists: the elements still to read, and
// those already resolved, which are real folders (the last may be a
// file), so ".." may simply drop the last of them.
func evalSymlinks(fsys sourceFS, path string) (string, error) {
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
		fi, err := fsys.Lstat(at)
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
		target, err := fsys.ReadLink(at)
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
	fsys sourceFS
	root string
	dirs map[string]bool // slash-separated paths found to be folders
}

func newRootFS(fsys sourceFS, root string) rootFS {
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
		if fi, err = r.fsys.Lstat(p); err != nil {
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
		target, err := r.fsys.ReadLink(p)
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
	fi, err := r.fsys.Lstat(p)
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
	target, err := r.fsys.ReadLink(p)
	if err != nil {
		return "", r.pathError("readlink", name, err)
	}
	return target, nil
}

// ReadDir lists a folder in name order, each entry described as Lstat
// describes it (fs.ReadDirFile.ReadDir does not follow symlinks).
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
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.ErrUnsupported}
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, r.pathError("readdir", name, err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, nil
}

var (
	_ fs.StatFS     = rootFS{}
	_ fs.ReadDirFS  = rootFS{}
	_ fs.ReadLinkFS = rootFS{}
)
