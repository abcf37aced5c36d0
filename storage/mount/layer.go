package mount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage/layer"
)

// Media types of stacker's erofs layers. strata does not write them but
// mounts them; the squashfs ones are storage/layer's.
const (
	MediaTypeErofsLz4hc = "application/vnd.stacker.image.layer.erofs+lz4hc"
	MediaTypeErofsLz4   = "application/vnd.stacker.image.layer.erofs+lz4"
	MediaTypeErofsZstd  = "application/vnd.stacker.image.layer.erofs+zstd"
	MediaTypeErofs      = "application/vnd.stacker.image.layer.erofs"
)

// fsType is the kernel's name of a layer's file system.
type fsType string

const (
	squashfs fsType = "squashfs"
	erofs    fsType = "erofs"
)

// ErrNotFilesystem is wrapped by Mount's error for a layer whose media
// type is not squashfs or erofs (tar layers cannot be mounted; unpack them).
var ErrNotFilesystem = errors.New("not a squashfs or erofs layer")

func fsTypeOf(mediaType string) (fsType, error) {
	switch mediaType {
	case layer.MediaTypeSquashfsZstd, layer.MediaTypeSquashfsGzip, layer.MediaTypeSquashfs:
		return squashfs, nil
	case MediaTypeErofsLz4hc, MediaTypeErofsLz4, MediaTypeErofsZstd, MediaTypeErofs:
		return erofs, nil
	}
	return "", fmt.Errorf("media type %q: %w", mediaType, ErrNotFilesystem)
}

const (
	squashfsMagic = "hsqs"
	erofsSBOffset = 1024
	erofsMagic    = 0xE0F5E1E2
)

// blob is a layer blob as inspected before mounting.
type blob struct {
	fs fsType
	// fsSize is the size of the file system image proper, from its
	// superblock.
	fsSize int64
	// hashOffset is fsSize rounded up to a verity block: where stacker and
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
	switch fs {
	case squashfs:
		// struct squashfs_super_block: s_magic at 0, bytes_used (u64) at 40.
		var sb [48]byte
		if _, err := f.ReadAt(sb[:], 0); err != nil || string(sb[:4]) != squashfsMagic {
			return blob{}, fmt.Errorf("no squashfs superblock (media type %s)", l.MediaType)
		}
		b.fsSize = int64(binary.LittleEndian.Uint64(sb[40:]))
	case erofs:
		// struct erofs_super_block at 1024: magic (u32) at 0, blkszbits
		// (u8) at 12, blocks (u32) at 36 (fs/erofs/erofs_fs.h).
		var sb [40]byte
		if _, err := f.ReadAt(sb[:], erofsSBOffset); err != nil || binary.LittleEndian.Uint32(sb[:]) != erofsMagic {
			return blob{}, fmt.Errorf("no erofs superblock (media type %s)", l.MediaType)
		}
		bits := sb[12]
		if bits < 9 || bits > 16 {
			return blob{}, fmt.Errorf("erofs block size 2^%d", bits)
		}
		b.fsSize = int64(binary.LittleEndian.Uint32(sb[36:])) << bits
	}
	if b.fsSize <= 0 || b.fsSize > b.size {
		return blob{}, fmt.Errorf("%s file system of %d bytes in a blob of %d: truncated", fs, b.fsSize, b.size)
	}
	b.hashOffset = (b.fsSize + verity.BlockSize - 1) / verity.BlockSize * verity.BlockSize
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
