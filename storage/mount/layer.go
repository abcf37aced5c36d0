package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage/layer"
)

// fsType is the kernel's name of a layer's file system.
type fsType string

const (
	squashfs fsType = "squashfs"
	erofs    fsType = "erofs"
)

// ErrNotFilesystem is wrapped by Mount's error for a layer whose media
// type is not squashfs or erofs (tar layers cannot be mounted: the caller
// passes them unpacked, as Layer.Dir).
var ErrNotFilesystem = errors.New("not a squashfs or erofs layer")

func fsTypeOf(mediaType string) (fsType, error) {
	t, err := layer.TypeOfMediaType(mediaType)
	if err != nil || !t.FS() {
		return "", fmt.Errorf("media type %q: %w", mediaType, ErrNotFilesystem)
	}
	return fsType(t), nil
}

// blob is a layer blob as inspected before mounting.
type blob struct {
	fs fsType
	// hashOffset is the file system's size rounded up to a verity block
	// (layer.FSImage): where stacker and
	// verity.Append start the tree, and the end of the loop device.
	hashOffset int64
	// size is the size of the blob file.
	size int64
}

// inspect reads a layer's superblock and applies stacker's rules: a blob
// with a root hash must carry a tree after its file system, a blob without
// one must not carry anything there (an unverified tail could be a tree
// whose root hash was stripped from the descriptor).
func inspect(f *os.File, l Layer) (blob, error) {
	fs, err := fsTypeOf(l.MediaType)
	if err != nil {
		return blob{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return blob{}, err
	}
	if l.RootHash != "" && !rootHashRE.MatchString(l.RootHash) {
		return blob{}, fmt.Errorf("verity root hash %q is not a sha256 in hex", l.RootHash)
	}
	b := blob{fs: fs, size: st.Size()}
	var found layertype.Type
	if found, b.hashOffset, err = layer.FSImage(f); err != nil || fsType(found) != fs {
		return blob{}, fmt.Errorf("no %s superblock (media type %s)", fs, l.MediaType)
	}
	if b.hashOffset > (b.size+verity.BlockSize-1)/verity.BlockSize*verity.BlockSize {
		return blob{}, fmt.Errorf("%s file system of %d bytes in a blob of %d: truncated", fs, b.hashOffset, b.size)
	}
	switch {
	case l.RootHash == "" && b.size > b.hashOffset:
		return blob{}, fmt.Errorf("%d bytes after the %s file system but no verity root hash in the descriptor", b.size-b.hashOffset, fs)
	case l.RootHash != "" && b.size <= b.hashOffset:
		return blob{}, fmt.Errorf("the descriptor has a verity root hash but the blob has no tree after its %s file system", fs)
	}
	return b, nil
}

var (
	hexDigest  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	rootHashRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// layerName names layer i for errors and logs: its index (0 is the base)
// and its digest when the path is an OCI layout blob, else its path.
func layerName(i int, l Layer) string {
	base := filepath.Base(l.Path)
	if hexDigest.MatchString(base) && filepath.Base(filepath.Dir(l.Path)) == "sha256" {
		return fmt.Sprintf("layer %d (sha256:%s)", i, base)
	}
	return fmt.Sprintf("layer %d (%s)", i, l.Path)
}

// openVerified opens a layer, inspects it and, when it has a root hash and
// verify is set, checks the whole blob against it in user space.
func openVerified(i int, l Layer, verify bool) (*os.File, blob, error) {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, blob{}, fmt.Errorf("%s: %w", layerName(i, l), err)
	}
	b, err := inspect(f, l)
	if err != nil {
		f.Close()
		return nil, blob{}, fmt.Errorf("%s: %w", layerName(i, l), err)
	}
	if verify && l.RootHash != "" {
		if err := verity.Verify(f, b.hashOffset, l.RootHash); err != nil {
			f.Close()
			return nil, blob{}, fmt.Errorf("%s: %w", layerName(i, l), err)
		}
	}
	return f, b, nil
}
