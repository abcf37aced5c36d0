package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inRoot does the sandbox process's own file operations in the pivoted
// rootfs the way the kernel resolves paths under chroot: every symlink,
// absolute ones included, stays inside the root, and /proc's magic links
// are refused. Plain path calls are not safe there: the process's other
// threads keep the host's root, so a symlink through /proc/1/task/N/root,
// planted by a step or shipped in a base image, would lead an import, the
// working-dir creation or a passwd lookup to the host. Every path
// component but the last is resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS); the last is acted on relative to its folder,
// without following it. No step runs while these calls do, so nothing
// can swap a path between the checks and the use.
type inRoot struct{ fd int }

func openInRoot() (*inRoot, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &inRoot{fd}, nil
}

func (r *inRoot) close() { unix.Close(r.fd) }

// rel is p relative to the root.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// open opens p, following symlinks inside the root.
func (r *inRoot) open(p string, flags int, mode uint32) (int, error) {
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for try := 0; ; try++ {
		fd, err := unix.Openat2(r.fd, rel(p), how)
		// EAGAIN: a rename somewhere raced a lookup through "..";
		// the kernel asks to try again.
		if err != unix.EAGAIN || try == 16 {
			return fd, err
		}
	}
}

// openFile is open as an *os.File.
func (r *inRoot) openFile(p string, flags int) (*os.File, error) {
	fd, err := r.open(p, flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// parent opens the folder holding p and returns p's last component.
func (r *inRoot) parent(p string) (int, string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return -1, "", errors.New("the root has no parent")
	}
	dir, base := path.Split(p)
	fd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, base, nil
}

// at runs fn on p's folder and last component.
func (r *inRoot) at(p string, fn func(dir int, base string) error) error {
	dir, base, err := r.parent(p)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if err := fn(dir, base); err != nil {
		return &os.PathError{Op: "at", Path: p, Err: err}
	}
	return nil
}

// lstat is lstat(2) of p.
func (r *inRoot) lstat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if path.Clean("/"+p) == "/" {
		return st, unix.Fstat(r.fd, &st)
	}
	err := r.at(p, func(dir int, base string) error {
		return unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	})
	return st, err
}

// stat is stat(2) of p, following symlinks inside the root.
func (r *inRoot) stat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.open(p, unix.O_PATH, 0)
	if err != nil {
		return st, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	defer unix.Close(fd)
	return st, unix.Fstat(fd, &st)
}

// isDir reports whether p is a folder or a symlink to one.
func (r *inRoot) isDir(p string) bool {
	st, err := r.stat(p)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// mkdirAll creates p and its missing parents with mode, like os.MkdirAll.
func (r *inRoot) mkdirAll(p string, mode uint32) error {
	p = path.Clean("/" + p)
	if r.isDir(p) {
		return nil
	}
	if p != "/" {
		if err := r.mkdirAll(path.Dir(p), mode); err != nil {
			return err
		}
	}
	err := r.at(p, func(dir int, base string) error { return unix.Mkdirat(dir, base, mode) })
	if err != nil && r.isDir(p) {
		return nil // made meanwhile, or a symlink to a folder
	}
	if errors.Is(err, unix.EEXIST) {
		// Something is there but is no folder: say what, rather than
		// "file exists".
		if _, serr := r.stat(p); errors.Is(serr, unix.ELOOP) || errors.Is(serr, unix.EXDEV) {
			return fmt.Errorf("%s: a symlink there leads through /proc or loops; imports only follow links that stay in the image", p)
		}
		return fmt.Errorf("%s: exists and is not a folder", p)
	}
	return err
}

// remove removes the file, symlink or empty folder p (not what a symlink
// points to).
func (r *inRoot) remove(p string) error {
	return r.at(p, func(dir int, base string) error {
		err := unix.Unlinkat(dir, base, 0)
		if errors.Is(err, unix.EISDIR) {
			err = unix.Unlinkat(dir, base, unix.AT_REMOVEDIR)
		}
		return err
	})
}

// create makes the new file p (failing if anything is there).
func (r *inRoot) create(p string, mode uint32) (*os.File, error) {
	var f *os.File
	err := r.at(p, func(dir int, base string) error {
		fd, err := unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err == nil {
			f = os.NewFile(uintptr(fd), p)
		}
		return err
	})
	return f, err
}

func (r *inRoot) symlink(target, p string) error {
	return r.at(p, func(dir int, base string) error { return unix.Symlinkat(target, dir, base) })
}

// lchown changes the owner of p itself.
func (r *inRoot) lchown(p string, uid, gid int) error {
	return r.at(p, func(dir int, base string) error {
		return unix.Fchownat(dir, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// chmodDir changes the mode of the folder p, following symlinks inside
// the root.
func (r *inRoot) chmodDir(p string, mode uint32) error {
	fd, err := r.open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, mode)
}

// lchtimes sets the access and modification times of p itself.
func (r *inRoot) lchtimes(p string, atime, mtime time.Time) error {
	if path.Clean("/"+p) == "/" {
		return r.chtimesDir(p, atime, mtime) // the root has no parent
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return r.at(p, func(dir int, base string) error {
		return unix.UtimesNanoAt(dir, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
}

// errIsDir says an import would replace a folder of the image by a file.
func errIsDir(p string) error { return fmt.Errorf("%s: is a directory in the image", p) }

// chtimesDir sets the times of the folder p, following symlinks inside the
// root (the folder a created mount point was in, which may have been
// reached through a link such as /var/run -> /run).
func (r *inRoot) chtimesDir(p string, atime, mtime time.Time) error {
	fd, err := r.open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return &os.PathError{Op: "chtimes", Path: p, Err: err}
	}
	defer unix.Close(fd)
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	// utimensat(fd, NULL, ...) is futimens: x/sys cannot pass a NULL path.
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); errno != 0 {
		return &os.PathError{Op: "chtimes", Path: p, Err: errno}
	}
	return nil
}
