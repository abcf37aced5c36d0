package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// MergedFS returns the read-only view, as an io/fs.FS, of the overlay of
// the layer folders dirs (bottom first, in overlay form): what a reader of
// the image's root file system sees, without mounting anything (which a
// rootless build, or one that ended, cannot do). Names are slash paths
// relative to the image root, as io/fs wants them. Open follows symbolic
// links inside the image, never on the host; ReadDir lists a folder merged
// across layers, whiteouts and opaque folders honoured, and reports
// symbolic links as links, so fs.WalkDir does not follow them. It shares
// its lookups with ExtractDirs.
//
// Only folders and regular files can be opened: opening a fifo or a
// device of the image would block or touch the host's device.
func MergedFS(dirs []string) fs.FS {
	return &mergedFS{m: merged{dirs: dirs}}
}

type mergedFS struct{ m merged }

var (
	_ fs.ReadDirFS = (*mergedFS)(nil)
	_ fs.StatFS    = (*mergedFS)(nil)
)

func (f *mergedFS) lookup(op, name string) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.m.resolve("/" + name)
	if errors.Is(err, ErrNotInImage) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

// Open opens a regular file (as the *os.File of the layer that has it,
// which is also an io.ReaderAt) or a folder.
func (f *mergedFS) Open(name string) (fs.File, error) {
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	switch {
	case n.dir:
		return &mergedDir{fsys: f, n: n, name: name}, nil
	case n.info.Mode().IsRegular():
		return os.Open(f.m.abs(n.top, n.rel))
	default:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%s: %w", n.info.Mode().Type(), fs.ErrInvalid)}
	}
}

// Stat describes name, symbolic links followed.
func (f *mergedFS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return renamed{n.info, path.Base(name)}, nil
}

// ReadDir lists the folder name as the overlay shows it, sorted by name.
func (f *mergedFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a folder")}
	}
	return f.m.list(n)
}

// list returns the entries of the folder n, merged, sorted by name.
func (m *merged) list(n *node) ([]fs.DirEntry, error) {
	sorted, err := m.names(n)
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for _, name := range sorted {
		c, err := m.child(n, name)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue // whited out
		}
		out = append(out, fs.FileInfoToDirEntry(c.info))
	}
	return out, nil
}

// mergedDir is an open folder of a MergedFS.
type mergedDir struct {
	fsys    *mergedFS
	n       *node
	name    string
	entries []fs.DirEntry
	read    bool
}

func (d *mergedDir) Stat() (fs.FileInfo, error) { return renamed{d.n.info, path.Base(d.name)}, nil }
func (d *mergedDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a folder")}
}
func (d *mergedDir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *mergedDir) ReadDir(count int) ([]fs.DirEntry, error) {
	if !d.read {
		entries, err := d.fsys.m.list(d.n)
		if err != nil {
			return nil, err
		}
		d.entries, d.read = entries, true
	}
	if count <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	count = min(count, len(d.entries))
	out := d.entries[:count]
	d.entries = d.entries[count:]
	return out, nil
}

// renamed is a FileInfo under the name it was looked up by (the root's
// is its layer folder's otherwise, a followed link's its target's).
type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }
