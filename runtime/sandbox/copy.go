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
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// copySource is an import's source, opened in the host's view before the
// pivot and read through its descriptor afterwards: no mount point is
// needed for it, so imports leave nothing behind in the image.
type copySource struct {
	file *os.File // a file source
	root *os.Root // a folder source
	name string   // the source's base name
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
			s.root, err = os.OpenRoot(src)
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
// container: symlinks in Dest resolve inside the image.
func (s *copySource) copyTo(c *Copy) error {
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
		if err := os.MkdirAll(path.Dir(dest), 0o755); err != nil {
			return err
		}
		fi, err := s.file.Stat()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		if c.Mode != nil {
			mode = *c.Mode
		}
		return copyFile(io.NewSectionReader(s.file, 0, fi.Size()), dest, mode, fi.ModTime(), uid, gid)
	}
	return s.copyDir(containerPath(c.Dest), c.Mode, uid, gid)
}

// copyDir merges the source folder into dest: existing folders of the image,
// and symlinks to folders, keep their owner and mode, everything created gets uid:gid, the source's
// modes and mtimes, and symlinks are copied as symlinks.
func (s *copySource) copyDir(dest string, topMode *fs.FileMode, uid, gid int) error {
	type dirTimes struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var made []dirTimes
	err := fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := path.Join(dest, p)
		existing, lerr := os.Lstat(target)
		switch {
		case d.IsDir():
			if lerr == nil && existing.IsDir() {
				return nil
			}
			if lerr == nil && existing.Mode().Type() == fs.ModeSymlink {
				// Merged /usr: /bin -> usr/bin. Merge through the
				// link (it resolves inside the pivoted rootfs) rather
				// than replace it with a folder.
				if fi, err := os.Stat(target); err == nil && fi.IsDir() {
					return nil
				}
			}
			if lerr == nil {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			if err := os.Lchown(target, uid, gid); err != nil {
				return err
			}
			mode := info.Mode()
			if p == "." && topMode != nil {
				mode = *topMode
			}
			made = append(made, dirTimes{target, mode, info.ModTime()})
			return nil
		case lerr == nil && existing.IsDir():
			return fmt.Errorf("%s: is a directory in the image", target)
		case lerr == nil:
			if err := os.Remove(target); err != nil {
				return err
			}
		}
		switch info.Mode().Type() {
		case fs.ModeSymlink:
			link, err := s.root.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			if err := os.Lchown(target, uid, gid); err != nil {
				return err
			}
			ts := unix.NsecToTimespec(info.ModTime().UnixNano())
			return unix.UtimesNanoAt(unix.AT_FDCWD, target, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		case 0:
			f, err := s.root.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return copyFile(f, target, info.Mode(), info.ModTime(), uid, gid)
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, info.Mode().Type())
		}
	})
	if err != nil {
		return err
	}
	if topMode != nil && (len(made) == 0 || made[0].path != dest) {
		if err := os.Chmod(dest, *topMode); err != nil {
			return err
		}
	}
	// Modes and times last, deepest first: creating entries changes a
	// folder's mtime, and a read-only source folder must stay writable
	// until it is filled.
	for i := len(made) - 1; i >= 0; i-- {
		if err := os.Chmod(made[i].path, made[i].mode); err != nil {
			return err
		}
		if err := os.Chtimes(made[i].path, made[i].mtime, made[i].mtime); err != nil {
			return err
		}
	}
	return nil
}

// copyFile writes a new file at dest, replacing a non-folder there without
// following a symlink.
func copyFile(src io.Reader, dest string, mode fs.FileMode, mtime time.Time, uid, gid int) error {
	if fi, err := os.Lstat(dest); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%s: is a directory in the image", dest)
		}
		if err := os.Remove(dest); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		// After chown, which clears set-id bits.
		err = f.Chmod(mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dest, mtime, mtime)
	}
	return err
}
