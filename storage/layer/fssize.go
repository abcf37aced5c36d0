package layer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/strata-build/strata/internal/layertype"
)

// FSImage reads the superblock of a squashfs or erofs layer and returns
// which it is and where its dm-verity tree begins: the file system's own
// size (squashfs: bytes used; erofs: blocks × block size), rounded up to
// 4 KiB, as stacker and strata pad the image before appending the tree.
func FSImage(r io.ReaderAt) (layertype.Type, int64, error) {
	head := make([]byte, 1024+64)
	if n, err := r.ReadAt(head, 0); n < 64 {
		return "", 0, fmt.Errorf("read file system superblock: %w", err)
	} else {
		head = head[:n]
	}
	le := binary.LittleEndian
	var size int64
	var t layertype.Type
	switch {
	case string(head[:4]) == "hsqs":
		t, size = layertype.Squashfs, int64(le.Uint64(head[40:]))
	case len(head) >= 1024+64 && le.Uint32(head[1024:]) == 0xe0f5e1e2:
		bits := head[1024+12]
		if bits < 9 || bits > 16 {
			return "", 0, fmt.Errorf("erofs block size 2^%d is not supported", bits)
		}
		t, size = layertype.Erofs, int64(le.Uint32(head[1024+36:]))<<bits
	default:
		return "", 0, errors.New("neither a squashfs nor an erofs image")
	}
	if size <= 0 {
		return "", 0, fmt.Errorf("%s size %d in its superblock", t, size)
	}
	return t, (size + 4095) / 4096 * 4096, nil
}
