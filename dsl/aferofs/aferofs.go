// Package aferofs lets dsl.Evaluate read an afero.Fs: a unit test writes
// the files its definitions import into afero.NewMemMapFs() and evaluates
// against them with dsl.Options{FS: aferofs.New(mem)}. It is a package
// of its own so that only what imports it links afero: every definitions
// driver links dsl.
package aferofs

import (
	"io/fs"
	"path"

	"github.com/spf13/afero"
)

// New returns a as the io/fs.FS dsl.Options.FS takes, whose names are
// absolute paths without their leading slash: the name "srv/app/x" is a's
// "/srv/app/x". Symlinks are read through afero.Lstater and
// afero.LinkReader where a has them (afero.NewOsFs does); afero.MemMapFs
// has no symlinks. A file system that reports a symlink it cannot read
// fails with afero.ErrNoReadlink.
func New(a afero.Fs) fs.FS { return aferoFS{a} }

type aferoFS struct{ a afero.Fs }

var (
	_ fs.StatFS     = aferoFS{}
	_ fs.ReadLinkFS = aferoFS{}
)

// abs is a's name of the io/fs name name, or an error for a name io/fs
// refuses.
func abs(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return path.Join("/", name), nil
}

func (f aferoFS) Open(name string) (fs.File, error) {
	p, err := abs("open", name)
	if err != nil {
		return nil, err
	}
	file, err := f.a.Open(p)
	if err != nil {
		return nil, err
	}
	return dirFile{file}, nil
}

func (f aferoFS) Stat(name string) (fs.FileInfo, error) {
	p, err := abs("stat", name)
	if err != nil {
		return nil, err
	}
	return f.a.Stat(p)
}

func (f aferoFS) Lstat(name string) (fs.FileInfo, error) {
	p, err := abs("lstat", name)
	if err != nil {
		return nil, err
	}
	if l, ok := f.a.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(p)
		return fi, err
	}
	return f.a.Stat(p)
}

func (f aferoFS) ReadLink(name string) (string, error) {
	p, err := abs("readlink", name)
	if err != nil {
		return "", err
	}
	if r, ok := f.a.(afero.LinkReader); ok {
		return r.ReadlinkIfPossible(p)
	}
	return "", &fs.PathError{Op: "readlink", Path: p, Err: afero.ErrNoReadlink}
}

// dirFile is an afero.File that lists a folder as io/fs does.
type dirFile struct{ afero.File }

func (d dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	infos, err := d.Readdir(n)
	entries := make([]fs.DirEntry, len(infos))
	for i, fi := range infos {
		entries[i] = fs.FileInfoToDirEntry(fi)
	}
	return entries, err
}
