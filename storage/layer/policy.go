package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrUnsafeArchive is returned (wrapped) for a layer or rootfs tarball
// with an entry that would land outside the rootfs or that no unpacker can
// apply safely.
var ErrUnsafeArchive = errors.New("unsafe archive")

// CheckEntry is the one policy every tar entry from outside passes before
// anything is written, whatever brought it (a rootfs tarball, a layout or
// registry layer, a cache layer): a name or hard-link target that climbs
// out of the rootfs ("../x", "/../x") is refused rather than clamped into
// it, so the same archive gives the same answer from every source. An
// absolute name ("/ko-app/x", as ko writes its images) means the same
// path inside the rootfs, as docker, containerd and umoci read it; and a whiteout that names no file (".wh." alone, ".wh..",
// ".wh...") is refused as malformed, since applying it would delete or
// re-own the folder holding it or that folder's parent. Symbolic links may
// point anywhere: they are resolved inside the rootfs when unpacked and
// when steps run.
func CheckEntry(h *tar.Header) error {
	if err := insideRoot(h.Name); err != nil {
		return fmt.Errorf("entry %q: %w", h.Name, err)
	}
	if h.Typeflag == tar.TypeLink {
		if err := insideRoot(h.Linkname); err != nil {
			return fmt.Errorf("entry %q: hard link to %q: %w", h.Name, h.Linkname, err)
		}
	}
	if rest, ok := strings.CutPrefix(path.Base(path.Clean(h.Name)), whiteoutPrefix); ok {
		switch rest {
		case "", ".", "..":
			return fmt.Errorf("entry %q: %w: malformed whiteout (%s%s names no file to delete)", h.Name, ErrUnsafeArchive, whiteoutPrefix, rest)
		}
	}
	return nil
}

func insideRoot(name string) error {
	// "/x" is x in the rootfs (the unpacker joins names to the rootfs
	// safely); only a name that climbs above it is refused.
	name = strings.TrimLeft(name, "/")
	if c := path.Clean(name); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%w: climbs out of the rootfs", ErrUnsafeArchive)
	}
	return nil
}
