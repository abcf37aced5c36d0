// Package verity computes and checks dm-verity hash trees in the layout
// veritysetup writes with a superblock: sha256, 4 KiB data and hash
// blocks, hash format 1 (salt first), the superblock at the hash offset
// and the tree's levels after it, top level first. stacker (through
// libcryptsetup) appends such a tree to its squashfs and erofs layers, at
// the file system image's size rounded up to 4 KiB, and records the root
// hash in the layer descriptor; strata does the same without cgo or
// libcryptsetup, so both tools mount each other's layers.
//
// The tree is computed here rather than by running veritysetup because the
// native squashfs writer hashes blocks as it writes them, and a build must
// not need cryptsetup installed. Both choices are checked against
// veritysetup in the tests.
package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	// BlockSize is the size of both data and hash blocks.
	BlockSize = 4096
	// SuperblockSize is the size of the superblock on disk; it fills one
	// hash block.
	SuperblockSize = 512
	// RootHashAnnotation is the layer descriptor annotation stacker and
	// strata write the root hash into, as lowercase hex.
	RootHashAnnotation = "io.stackeroci.stacker.atomfs_verity_root_hash"
	// OldRootHashAnnotation is the annotation older stackers wrote; it is
	// read, never written.
	OldRootHashAnnotation = "io.stackeroci.stacker.squashfs_verity_root_hash"

	hashSize     = sha256.Size
	hashPerBlock = BlockSize / hashSize
)

// Salt is the salt strata writes. veritysetup picks a random one; strata's
// is fixed so that the same file system image always gives the same layer
// blob. The salt protects against attacks prepared for many devices at
// once, which sha256 makes impractical anyway.
var Salt = func() []byte { s := sha256.Sum256([]byte("strata dm-verity salt v1")); return s[:] }()

// RootHash returns the root hash recorded in a layer descriptor's
// annotations, under the current or the old name, and whether there was one.
func RootHash(annotations map[string]string) (string, bool) {
	if h, ok := annotations[RootHashAnnotation]; ok {
		return h, true
	}
	h, ok := annotations[OldRootHashAnnotation]
	return h, ok
}

// Tree accumulates the hashes of an image's data blocks. Data arrives in
// order through Write; a block written before its final content was known
// (a file system's superblock, patched at the end) is corrected with
// SetBlock.
type Tree struct {
	salt   []byte
	leaves []byte // hashSize bytes per data block
	part   []byte // a partial block from Write
	n      int64  // bytes written
}

// NewTree starts a tree with the given salt (at most 256 bytes; nil means
// Salt).
func NewTree(salt []byte) *Tree {
	if salt == nil {
		salt = Salt
	}
	return &Tree{salt: salt, part: make([]byte, 0, BlockSize)}
}

// Write hashes p as the next bytes of the image.
func (t *Tree) Write(p []byte) (int, error) {
	n := len(p)
	t.n += int64(n)
	if len(t.part) > 0 {
		k := min(BlockSize-len(t.part), len(p))
		t.part = append(t.part, p[:k]...)
		p = p[k:]
		if len(t.part) < BlockSize {
			return n, nil
		}
		t.leaves = t.hash(t.leaves, t.part)
		t.part = t.part[:0]
	}
	for len(p) >= BlockSize {
		t.leaves = t.hash(t.leaves, p[:BlockSize])
		p = p[BlockSize:]
	}
	t.part = append(t.part, p...)
	return n, nil
}

// Size returns the number of bytes written.
func (t *Tree) Size() int64 { return t.n }

// SetBlock replaces the hash of data block i, which must have been written.
func (t *Tree) SetBlock(i int64, block []byte) error {
	if len(block) != BlockSize || (i+1)*hashSize > int64(len(t.leaves)) || i < 0 {
		return fmt.Errorf("verity: block %d (%d bytes) was not written", i, len(block))
	}
	sum := t.sum(block)
	copy(t.leaves[i*hashSize:], sum[:])
	return nil
}

func (t *Tree) sum(b []byte) [hashSize]byte {
	h := sha256.New()
	h.Write(t.salt)
	h.Write(b)
	var out [hashSize]byte
	h.Sum(out[:0])
	return out
}

func (t *Tree) hash(dst, b []byte) []byte {
	s := t.sum(b)
	return append(dst, s[:]...)
}

// Finish writes the superblock and the hash tree to w (which continues the
// image at a 4 KiB boundary) and returns the root hash. The image written
// so far must be a whole number of blocks: pad it with Write first.
func (t *Tree) Finish(w io.Writer) (root []byte, err error) {
	if len(t.part) > 0 {
		return nil, fmt.Errorf("verity: image of %d bytes is not a multiple of %d", t.n, BlockSize)
	}
	blocks := int64(len(t.leaves) / hashSize)
	if blocks == 0 {
		return nil, errors.New("verity: empty image")
	}
	levels, root := t.levels()
	if _, err := w.Write(t.superblock(blocks, root)); err != nil {
		return nil, err
	}
	// veritysetup stores the level closest to the root first.
	for i := len(levels) - 1; i >= 0; i-- {
		if _, err := w.Write(levels[i]); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// levels builds the hash levels from the leaves up, each padded to whole
// blocks, and returns them with the root hash. As in veritysetup, a
// single-block image has no levels and its root hash is the block's hash.
func (t *Tree) levels() ([][]byte, []byte) {
	var levels [][]byte
	cur := t.leaves
	if len(cur) == hashSize {
		return nil, bytes.Clone(cur)
	}
	for {
		lvl := make([]byte, 0, (len(cur)+BlockSize-1)/BlockSize*BlockSize)
		lvl = append(lvl, cur...)
		if pad := len(lvl) % BlockSize; pad != 0 {
			lvl = append(lvl, make([]byte, BlockSize-pad)...)
		}
		levels = append(levels, lvl)
		if len(lvl) == BlockSize {
			s := t.sum(lvl)
			return levels, s[:]
		}
		next := make([]byte, 0, len(lvl)/BlockSize*hashSize)
		for b := lvl; len(b) > 0; b = b[BlockSize:] {
			next = t.hash(next, b[:BlockSize])
		}
		cur = next
	}
}

// superblock is veritysetup's struct verity_sb, padded to a hash block.
func (t *Tree) superblock(blocks int64, root []byte) []byte {
	sb := make([]byte, BlockSize)
	copy(sb[0:], "verity\x00\x00")
	le := binary.LittleEndian
	le.PutUint32(sb[8:], 1)  // superblock version
	le.PutUint32(sb[12:], 1) // hash type: normal (salt first)
	// veritysetup writes a random UUID; a fixed function of the root hash
	// keeps the blob reproducible and still tells images apart.
	u := sha256.Sum256(append([]byte("strata verity uuid"), root...))
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	copy(sb[16:32], u[:16])
	copy(sb[32:64], "sha256")
	le.PutUint32(sb[64:], BlockSize)
	le.PutUint32(sb[68:], BlockSize)
	le.PutUint64(sb[72:], uint64(blocks))
	le.PutUint16(sb[80:], uint16(len(t.salt)))
	copy(sb[88:88+256], t.salt)
	return sb
}

// HashAreaSize returns the bytes Finish appends for an image of the given
// number of data blocks.
func HashAreaSize(blocks int64) int64 {
	n := int64(1) // superblock
	if blocks <= 1 {
		return n * BlockSize
	}
	for cur := blocks; ; {
		lvl := (cur + hashPerBlock - 1) / hashPerBlock
		n += lvl
		if lvl == 1 {
			return n * BlockSize
		}
		cur = lvl
	}
}

// Append pads the file system image at path with zeros to a multiple of
// 4 KiB, appends the superblock and hash tree and returns the root hash as
// lowercase hex, as stacker records it.
func Append(path string) (string, error) { return AppendHashing(path, nil) }

// AppendHashing is Append that also writes every byte of the resulting
// file, in order, to whole (when not nil): the blob's digest comes from
// the same read of the image as its tree.
func AppendHashing(path string, whole io.Writer) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("verity: %w", err)
	}
	defer f.Close()
	if whole == nil {
		whole = io.Discard
	}
	t := NewTree(nil)
	sink := io.MultiWriter(t, whole)
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(sink, f, buf); err != nil {
		return "", fmt.Errorf("verity: read %s: %w", path, err)
	}
	if pad := t.Size() % BlockSize; pad != 0 {
		z := make([]byte, BlockSize-pad)
		if _, err := f.Write(z); err != nil {
			return "", fmt.Errorf("verity: pad %s: %w", path, err)
		}
		sink.Write(z)
	}
	root, err := t.Finish(io.MultiWriter(f, whole))
	if err != nil {
		return "", fmt.Errorf("verity: %s: %w", path, err)
	}
	return hex.EncodeToString(root), f.Close()
}

// ErrMismatch is the error Verify wraps when an image or its tree does not
// match the root hash.
var ErrMismatch = errors.New("dm-verity check failed")

// Verify checks an image with an appended tree against root (hex) in user
// space: the superblock at offset, every data block, and the stored tree,
// which must equal the tree computed from the data. offset is where the
// file system image ends (where Append began writing, after padding).
func Verify(r io.ReaderAt, offset int64, root string) error {
	want, err := hex.DecodeString(root)
	if err != nil || len(want) != hashSize {
		return fmt.Errorf("verity: root hash %q is not a sha256 in hex", root)
	}
	if offset <= 0 || offset%BlockSize != 0 {
		return fmt.Errorf("verity: hash offset %d is not a positive multiple of %d", offset, BlockSize)
	}
	sb := make([]byte, SuperblockSize)
	if _, err := r.ReadAt(sb, offset); err != nil {
		return fmt.Errorf("%w: no verity superblock at offset %d: %v", ErrMismatch, offset, err)
	}
	salt, blocks, err := parseSuperblock(sb)
	if err != nil {
		return err
	}
	if blocks != offset/BlockSize {
		return fmt.Errorf("%w: superblock covers %d blocks, the image has %d", ErrMismatch, blocks, offset/BlockSize)
	}
	t := NewTree(salt)
	if _, err := io.CopyBuffer(t, io.NewSectionReader(r, 0, offset), make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("verity: read image: %w", err)
	}
	var area bytes.Buffer
	got, err := t.Finish(&area)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: the image's root hash is %x, want %s", ErrMismatch, got, root)
	}
	stored := make([]byte, area.Len()-BlockSize)
	if _, err := r.ReadAt(stored, offset+BlockSize); err != nil {
		return fmt.Errorf("%w: hash tree truncated: %v", ErrMismatch, err)
	}
	if !bytes.Equal(stored, area.Bytes()[BlockSize:]) {
		return fmt.Errorf("%w: the stored hash tree differs from the image's", ErrMismatch)
	}
	return nil
}

// parseSuperblock checks what strata and stacker write (format 1, sha256,
// 4 KiB blocks) and returns the salt and the number of data blocks.
func parseSuperblock(sb []byte) ([]byte, int64, error) {
	le := binary.LittleEndian
	switch {
	case string(sb[:8]) != "verity\x00\x00":
		return nil, 0, fmt.Errorf("%w: no verity superblock at the hash offset", ErrMismatch)
	case le.Uint32(sb[8:]) != 1 || le.Uint32(sb[12:]) != 1:
		return nil, 0, fmt.Errorf("verity: superblock version %d, hash type %d: only 1 and 1 are supported", le.Uint32(sb[8:]), le.Uint32(sb[12:]))
	case string(bytes.TrimRight(sb[32:64], "\x00")) != "sha256":
		return nil, 0, fmt.Errorf("verity: hash %q: only sha256 is supported", bytes.TrimRight(sb[32:64], "\x00"))
	case le.Uint32(sb[64:]) != BlockSize || le.Uint32(sb[68:]) != BlockSize:
		return nil, 0, fmt.Errorf("verity: block sizes %d/%d: only %d is supported", le.Uint32(sb[64:]), le.Uint32(sb[68:]), BlockSize)
	}
	n := int(le.Uint16(sb[80:]))
	if n > 256 {
		return nil, 0, fmt.Errorf("verity: salt of %d bytes", n)
	}
	return bytes.Clone(sb[88 : 88+n]), int64(le.Uint64(sb[72:])), nil
}
