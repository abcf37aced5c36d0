package layer

import (
	"encoding/binary"
	"fmt"
	"io"
	"path"
)

// ErofsOpaqueDirs lists the folders of an erofs image marked opaque
// (trusted.overlay.opaque or user.overlay.opaque = "y"), as paths relative
// to its root ("." for the root). fsck.erofs 1.5 extracts no xattrs, so
// ExtractErofs reads the marks from the image and sets them on the
// extracted tree itself.
//
// Only what a directory walk needs of the on-disk format is read
// (Documentation/filesystems/erofs.rst, fs/erofs/erofs_fs.h): the
// superblock, compact and extended inodes, inline and shared xattrs, and
// uncompressed (flat) directories, which is how mkfs.erofs writes them.
func ErofsOpaqueDirs(r io.ReaderAt) ([]string, error) {
	e, err := newErofsReader(r)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[uint64]bool{}
	var walk func(nid uint64, rel string, depth int) error
	walk = func(nid uint64, rel string, depth int) error {
		if seen[nid] || depth > 4096 {
			return fmt.Errorf("erofs: directory loop at %s", rel)
		}
		seen[nid] = true
		ino, err := e.inode(nid)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		opaque, err := e.opaque(ino)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if opaque {
			out = append(out, rel)
		}
		ents, err := e.dirents(ino)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		for _, d := range ents {
			if d.name == "." || d.name == ".." || d.ftype != erofsFTDir {
				continue
			}
			if err := walk(d.nid, path.Join(rel, d.name), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(e.rootNid, ".", 0); err != nil {
		return nil, err
	}
	return out, nil
}

const (
	erofsFTDir          = 2 // EROFS_FT_DIR
	erofsLayoutPlain    = 0 // EROFS_INODE_FLAT_PLAIN
	erofsLayoutInline   = 2 // EROFS_INODE_FLAT_INLINE
	erofsXattrUser      = 1 // EROFS_XATTR_INDEX_USER
	erofsXattrTrusted   = 4 // EROFS_XATTR_INDEX_TRUSTED
	erofsDirentSize     = 12
	erofsSlotSize       = 32
	erofsXattrHdrSize   = 12 // struct erofs_xattr_ibody_header
	erofsXattrEntrySize = 4  // struct erofs_xattr_entry, before the name
)

// The erofs superblock's place and magic (fs/erofs/erofs_fs.h).
const (
	erofsSBOffset = 1024
	erofsMagic    = 0xE0F5E1E2
)

type erofsReader struct {
	r                 io.ReaderAt
	bits              uint
	metaBlk, xattrBlk uint64
	rootNid           uint64
}

func newErofsReader(r io.ReaderAt) (*erofsReader, error) {
	sb := make([]byte, 128)
	if _, err := r.ReadAt(sb, erofsSBOffset); err != nil {
		return nil, fmt.Errorf("erofs superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(sb) != erofsMagic {
		return nil, fmt.Errorf("erofs: bad superblock magic")
	}
	e := &erofsReader{
		r:        r,
		bits:     uint(sb[12]),
		rootNid:  uint64(le.Uint16(sb[14:])),
		metaBlk:  uint64(le.Uint32(sb[40:])),
		xattrBlk: uint64(le.Uint32(sb[44:])),
	}
	if e.bits < 9 || e.bits > 16 {
		return nil, fmt.Errorf("erofs: block size 2^%d", e.bits)
	}
	return e, nil
}

type erofsInode struct {
	off    int64 // of the inode
	layout int
	size   uint64
	rawBlk uint64
	isize  int64 // inode size
	xsize  int64 // inline xattr area size
}

func (e *erofsReader) read(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := e.r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("erofs: read %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

func (e *erofsReader) inode(nid uint64) (erofsInode, error) {
	off := int64(e.metaBlk<<e.bits + nid*erofsSlotSize)
	b, err := e.read(off, 64)
	if err != nil {
		return erofsInode{}, err
	}
	le := binary.LittleEndian
	format := le.Uint16(b)
	ino := erofsInode{off: off, layout: int(format>>1) & 7, rawBlk: uint64(le.Uint32(b[16:]))}
	if format&1 == 0 { // compact
		ino.isize, ino.size = 32, uint64(le.Uint32(b[8:]))
	} else {
		ino.isize, ino.size = 64, le.Uint64(b[8:])
	}
	if n := int64(le.Uint16(b[2:])); n > 0 {
		ino.xsize = erofsXattrHdrSize + (n-1)*4
	}
	return ino, nil
}

// opaque reports an overlay opaque mark among the inode's xattrs.
func (e *erofsReader) opaque(ino erofsInode) (bool, error) {
	if ino.xsize == 0 {
		return false, nil
	}
	area, err := e.read(ino.off+ino.isize, int(ino.xsize))
	if err != nil {
		return false, err
	}
	shared := int(area[4])
	pos := erofsXattrHdrSize + 4*shared
	if pos > len(area) {
		return false, fmt.Errorf("erofs: %d shared xattrs overflow the xattr area", shared)
	}
	for i := range shared {
		id := uint64(binary.LittleEndian.Uint32(area[erofsXattrHdrSize+4*i:]))
		off := int64(e.xattrBlk<<e.bits + id*4)
		hdr, err := e.read(off, erofsXattrEntrySize)
		if err != nil {
			return false, err
		}
		nv, err := e.read(off+erofsXattrEntrySize, int(hdr[0])+int(binary.LittleEndian.Uint16(hdr[2:])))
		if err != nil {
			return false, err
		}
		if isOpaqueXattr(hdr, nv) {
			return true, nil
		}
	}
	for pos+erofsXattrEntrySize <= len(area) {
		hdr := area[pos : pos+erofsXattrEntrySize]
		n := erofsXattrEntrySize + int(hdr[0]) + int(binary.LittleEndian.Uint16(hdr[2:]))
		if pos+n > len(area) {
			return false, fmt.Errorf("erofs: xattr entry overflows the xattr area")
		}
		if isOpaqueXattr(hdr, area[pos+erofsXattrEntrySize:pos+n]) {
			return true, nil
		}
		pos += (n + 3) &^ 3
	}
	return false, nil
}

// isOpaqueXattr reports {trusted,user}.overlay.opaque = "y" from an
// entry's header and its name and value.
func isOpaqueXattr(hdr, nameValue []byte) bool {
	idx, nlen := hdr[1], int(hdr[0])
	if idx != erofsXattrTrusted && idx != erofsXattrUser {
		return false
	}
	return string(nameValue[:nlen]) == "overlay.opaque" && string(nameValue[nlen:]) == "y"
}

type erofsDirent struct {
	nid   uint64
	name  string
	ftype byte
}

// dirents reads a flat directory: blocks of dirents, each block starting
// with the dirent array (whose first nameoff gives its length) followed by
// the names; the last block is inline after the inode for FLAT_INLINE.
func (e *erofsReader) dirents(ino erofsInode) ([]erofsDirent, error) {
	if ino.layout != erofsLayoutPlain && ino.layout != erofsLayoutInline {
		return nil, fmt.Errorf("erofs: directory layout %d (compressed or chunked) is not supported", ino.layout)
	}
	bs := uint64(1) << e.bits
	nblocks := (ino.size + bs - 1) / bs
	var out []erofsDirent
	le := binary.LittleEndian
	for b := range nblocks {
		n := min(bs, ino.size-b*bs)
		off := int64((ino.rawBlk + b) << e.bits)
		if ino.layout == erofsLayoutInline && b == nblocks-1 {
			off = ino.off + ino.isize + ino.xsize
		}
		blk, err := e.read(off, int(n))
		if err != nil {
			return nil, err
		}
		if len(blk) < erofsDirentSize {
			return nil, fmt.Errorf("erofs: directory block of %d bytes", len(blk))
		}
		count := int(le.Uint16(blk[8:])) / erofsDirentSize
		if count == 0 || count*erofsDirentSize > len(blk) {
			return nil, fmt.Errorf("erofs: bad directory block")
		}
		for j := range count {
			d := blk[j*erofsDirentSize:]
			start := int(le.Uint16(d[8:]))
			end := len(blk)
			if j+1 < count {
				end = int(le.Uint16(blk[(j+1)*erofsDirentSize+8:]))
			}
			if start > end || end > len(blk) {
				return nil, fmt.Errorf("erofs: bad directory entry")
			}
			name := blk[start:end]
			for k, c := range name {
				if c == 0 {
					name = name[:k]
					break
				}
			}
			out = append(out, erofsDirent{nid: le.Uint64(d), name: string(name), ftype: d[10]})
		}
	}
	return out, nil
}
