package driver

import (
	"errors"

	"golang.org/x/sys/unix"
)

// stampOf is what the kernel says of the file at p, following symlinks.
// The change time is the part that makes it sound: no write, truncate,
// rename over or chmod leaves it alone, and unlike the modification time
// no user call can set it back.
func stampOf(p string) (fileStamp, bool) {
	var st unix.Stat_t
	err := unix.Stat(p, &st)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fileStamp{Path: p, Missing: true}, true
	}
	if err != nil {
		return fileStamp{}, false
	}
	if st.Ctim.Sec == 0 && st.Ctim.Nsec == 0 {
		// A file system that keeps no change time (some FUSE ones
		// report zero) cannot tell an edit by stamps.
		return fileStamp{}, false
	}
	return fileStamp{
		Path:  p,
		Dev:   uint64(st.Dev),
		Ino:   uint64(st.Ino),
		Mode:  uint32(st.Mode),
		Size:  st.Size,
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
	}, true
}
