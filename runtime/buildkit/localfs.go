package buildkit

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tonistiigi/fsutil"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/ignore"
)

// localFS is what the session sends of a local import: a folder with the
// entries strata leaves out of it left out (its Exclude patterns, .git,
// stores and layouts, as ignore.Walk decides for the cache key and the
// local copy), or the one file of a file import, whose path in it is
// file. BuildKit's own include and exclude patterns have another syntax,
// so the filter is strata's.
func localFS(src *dsl.LocalSource, isDir bool) (_ fsutil.FS, file string, err error) {
	root, keepOnly := src.Path, ""
	if !isDir {
		root, keepOnly = filepath.Dir(src.Path), filepath.Base(src.Path)
		// A symlink at the source itself is followed, as locally.
		if target, err := filepath.EvalSymlinks(src.Path); err == nil {
			root, keepOnly = filepath.Dir(target), filepath.Base(target)
		}
	}
	inner, err := fsutil.NewFS(root)
	if err != nil {
		return nil, "", err
	}
	f := &filtered{inner: inner, only: keepOnly, out: map[string]bool{}}
	if isDir {
		m, err := ignore.Compile(src.Exclude)
		if err != nil {
			return nil, "", err
		}
		err = ignore.WalkLeftOut(os.DirFS(root), m, func(name string, _ fs.DirEntry) error {
			f.out[name] = true
			return nil
		})
		if err != nil {
			return nil, "", err
		}
	}
	return f, "/" + keepOnly, nil
}

type filtered struct {
	inner fsutil.FS
	only  string          // the one entry of a file import
	out   map[string]bool // entries left out, by slash path
}

func (f *filtered) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	return f.inner.Walk(ctx, target, func(p string, d fs.DirEntry, err error) error {
		rel := filepath.ToSlash(strings.TrimPrefix(p, "/"))
		if f.leftOut(rel) {
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return fn(p, d, err)
	})
}

func (f *filtered) leftOut(rel string) bool {
	if f.only != "" {
		return rel != f.only
	}
	return f.out[rel]
}

func (f *filtered) Open(p string) (io.ReadCloser, error) {
	if f.leftOut(filepath.ToSlash(strings.TrimPrefix(p, "/"))) {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return f.inner.Open(p)
}
