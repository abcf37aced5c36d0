package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/ignore"
	"github.com/strata-build/strata/internal/unixmode"
)

// copySource is an import's source, opened in the host's view before the
// pivot and read through its descriptor afterwards: no mount point is
// needed for it, so imports leave nothing behind in the image.
type copySource struct {
	file    *os.File // a file source
	root    *os.Root // a folder source
	exclude *ignore.Matcher
	name    string // the source's base name
}

// openCopySources opens the source of every copy step, by step index.
func openCopySources(cs *childSpec) (map[int]*copySource, error) {
	m := map[int]*copySource{}
	for i, st := range cs.Steps {
		if st.Copy == nil {
			continue
		}
		src := st.Copy.Source
		fail := func(err error) error {
			return fmt.Errorf("%s: import %s: %w", stepName(i, st.Where), src, err)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fail(err)
		}
		s := &copySource{name: filepath.Base(src)}
		switch {
		case fi.IsDir():
			if s.exclude, err = ignore.Compile(st.Copy.Exclude); err == nil {
				s.root, err = os.OpenRoot(src)
			}
		case fi.Mode().IsRegular():
			s.file, err = os.Open(src)
		default:
			err = fmt.Errorf("unsupported file type %s", fi.Mode().Type())
		}
		if err != nil {
			return nil, fail(err)
		}
		m[i] = s
	}
	return m, nil
}

// copyTo performs the import in the pivoted rootfs, as root of the
// container: symlinks in Dest resolve inside the image (see inRoot).
func (s *copySource) copyTo(root *inRoot, c *Copy) error {
	uid, gid := 0, 0
	if c.UID != nil {
		uid = *c.UID
	}
	if c.GID != nil {
		gid = *c.GID
	}
	if s.file != nil {
		dest := c.Dest
		if strings.HasSuffix(dest, "/") {
			dest = path.Join(dest, s.name)
		}
		dest = containerPath(dest)
		if err := root.mkdirAll(path.Dir(dest), 0o755); err != nil {
			return err
		}
		fi, err := s.file.Stat()
		if err != nil {
			return err
		}
		mode := unixmode.Bits(fi.Mode())
		if c.Mode != nil {
			mode = *c.Mode
		}
		return copyFile(root, io.NewSectionReader(s.file, 0, fi.Size()), dest, mode, fi.ModTime(), uid, gid)
	}
	return s.copyDir(root, containerPath(c.Dest), c.Mode, uid, gid)
}

// copyDir merges the source folder into dest: existing folders of the
// image, and symlinks to folders, keep their owner and mode; everything
// created gets uid:gid, the source's modes and mtimes, and symlinks are
// copied as symlinks. What ignore.Walk leaves out (excluded entries,
// .git, stores, OCI layouts) is not copied: the walk is the one dsl
// hashes the folder with, so the cache key covers what is copied.
func (s *copySource) copyDir(root *inRoot, dest string, topMode *uint32, uid, gid int) error {
	type dirTimes struct {
		path  string
		mode  uint32
		mtime time.Time
	}
	var made []dirTimes
	err := ignore.Walk(s.root.FS(), s.exclude, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := path.Join(dest, p)
		existing, lerr := root.lstat(target)
		exists := lerr == nil
		isDir := exists && existing.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case d.IsDir():
			// Merged /usr: /bin -> usr/bin. Merge through a link to
			// a folder (it resolves inside the root) rather than
			// replace it.
			if isDir || exists && root.isDir(target) {
				return nil
			}
			if exists {
				if err := root.remove(target); err != nil {
					return err
				}
			}
			// Missing parents as mkdir -p makes them; the folder itself
			// gets its mode once it is filled.
			if err := root.mkdirAll(path.Dir(target), 0o755); err != nil {
				return err
			}
			if err := root.mkdirAll(target, 0o700); err != nil {
				return err
			}
			if err := root.lchown(target, uid, gid); err != nil {
				return err
			}
			mode := unixmode.Bits(info.Mode())
			if p == "." && topMode != nil {
				mode = *topMode
			}
			made = append(made, dirTimes{target, mode, info.ModTime()})
			return nil
		case isDir:
			return errIsDir(target)
		case exists:
			if err := root.remove(target); err != nil {
				return err
			}
		}
		switch info.Mode().Type() {
		case fs.ModeSymlink:
			link, err := s.root.Readlink(p)
			if err != nil {
				return err
			}
			if err := root.symlink(link, target); err != nil {
				return err
			}
			if err := root.lchown(target, uid, gid); err != nil {
				return err
			}
			return root.lchtimes(target, info.ModTime(), info.ModTime())
		case 0:
			f, err := s.root.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return copyFile(root, f, target, unixmode.Bits(info.Mode()), info.ModTime(), uid, gid)
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, info.Mode().Type())
		}
	})
	if err != nil {
		return err
	}
	if topMode != nil && (len(made) == 0 || made[0].path != dest) {
		if err := root.chmodDir(dest, *topMode); err != nil {
			return err
		}
	}
	// Modes and times last, deepest first: creating entries changes a
	// folder's mtime, and a read-only source folder must stay writable
	// until it is filled.
	for i := len(made) - 1; i >= 0; i-- {
		if err := root.chmodDir(made[i].path, made[i].mode); err != nil {
			return err
		}
		if err := root.lchtimes(made[i].path, made[i].mtime, made[i].mtime); err != nil {
			return err
		}
	}
	return nil
}

// copyFile writes a new file at dest, replacing a non-folder there without
// following a symlink; mode is as chmod(2) takes it.
func copyFile(root *inRoot, src io.Reader, dest string, mode uint32, mtime time.Time, uid, gid int) error {
	if st, err := root.lstat(dest); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return errIsDir(dest)
		}
		if err := root.remove(dest); err != nil {
			return err
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return err
	}
	f, err := root.create(dest, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		// After chown, which clears set-id bits.
		if err = unix.Fchmod(int(f.Fd()), mode); err != nil {
			err = &os.PathError{Op: "chmod", Path: dest, Err: err}
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.lchtimes(dest, mtime, mtime)
	}
	return err
}
