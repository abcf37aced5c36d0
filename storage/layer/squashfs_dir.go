package layer

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
)

// squashfsDirMode enables the folder mode; tests turn it off to compare
// both modes' output.
var squashfsDirMode = true

// errNeedsTar stops the pre-scan at the first entry mksquashfs's folder
// mode would not store as strata means it.
var errNeedsTar = errors.New("upper dir needs translation")

// squashfsDirModeOK reports whether mksquashfs can read upperDir as a
// folder, which is faster than its -tar mode (mksquashfs 4.5 reads a tar
// stream in one thread). That is the case when nothing needs the
// translation the tar stream does: no overlay xattrs (opaque markers,
// redirects, origin and impure records of the build overlay, which
// mksquashfs 4.5 cannot filter) and no sockets (which images leave out).
// Whiteouts are char 0/0 nodes in both forms. The walk costs one
// llistxattr per entry, a small fraction of compressing the content.
func squashfsDirModeOK(ctx context.Context, upperDir string) bool {
	buf := make([]byte, 4096)
	err := filepath.WalkDir(upperDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type()&fs.ModeSocket != 0 {
			return errNeedsTar
		}
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			return errNeedsTar // long lists are rare: let the tar path judge
		}
		if err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				return nil
			}
			return err
		}
		for name := range bytes.SplitSeq(buf[:n], []byte{0}) {
			if overlayfs.IsXattr(string(name)) {
				return errNeedsTar
			}
		}
		return nil
	})
	return err == nil
}
