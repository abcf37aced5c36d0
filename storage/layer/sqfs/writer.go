// Package sqfs writes squashfs 4.0 images (the format the Linux kernel,
// unsquashfs and squashfuse read) from a stream of tar headers, without
// mksquashfs.
//
// strata builds squashfs layers from its upper-dir walker's entries. Doing it
// in-process instead of piping a tar stream into mksquashfs lets one pass
// over the data compress it, lay it out and hash it for dm-verity, makes the
// image a pure function of the entries (byte-for-byte reproducible whatever
// the number of cores), and removes squashfs-tools from the build host's
// requirements.
//
// Layout of an image, in file order:
//
//	superblock (96 bytes, written last with WriteAt)
//	data: each file's full blocks, then fragment blocks as they fill, in
//	      entry order
//	inode table, directory table (metadata blocks)
//	fragment table, id table, xattr tables (metadata blocks + index)
//	zero padding to 4 KiB
//	[dm-verity superblock and hash tree]
//
// The order of the tables is the one the kernel's sanity checks expect
// (each table's index must end before the next table begins).
package sqfs

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/strata-build/strata/internal/verity"
)

// Options configure a Writer. The zero value writes zstd level 3 with
// 128 KiB blocks, a mkfs time of 0 and no verity tree.
type Options struct {
	// Level is the zstd level in zstd's own scale (1..22); 0 means 3.
	// klauspost/compress has four speeds, chosen by
	// zstd.EncoderLevelFromZstd.
	Level int
	// BlockSize is the data block size, a power of two from 4 KiB to
	// 1 MiB; 0 means 128 KiB, mksquashfs's default.
	BlockSize int
	// ModTime is the superblock's mkfs time and the root directory's
	// mtime.
	ModTime time.Time
	// Workers is the number of parallel block compressors; 0 means
	// runtime.GOMAXPROCS(0). The image does not depend on it.
	Workers int
	// Verity appends a dm-verity superblock and hash tree (internal/verity)
	// after the image padded to 4 KiB, as stacker does.
	Verity bool
}

// Result describes a finished image.
type Result struct {
	// Size is the size of the whole file, verity tree included.
	Size int64
	// RootHash is the dm-verity root hash in lowercase hex, "" without
	// Options.Verity.
	RootHash string
	// Entries is the number of entries added.
	Entries int
}

const (
	magic           = 0x73717368
	zstdCompression = 6
	metaSize        = 8192 // uncompressed size of a metadata block
	superblockSize  = 96
	invalid64       = ^uint64(0)
	noFragment      = ^uint32(0)
	noXattr         = ^uint32(0)

	// Superblock flags.
	flagNoXattrs        = 0x0200
	flagAlwaysFragments = 0x0020
	flagDuplicates      = 0x0040 // equal tails are stored once

	// Data and fragment block size fields: the block is stored as it is.
	blockUncompressed = 1 << 24
	// Metadata block headers: the block is stored as it is.
	metaUncompressed = 1 << 15

	// The kernel rejects names longer than this (SQUASHFS_NAME_LEN is 256,
	// Linux's NAME_MAX 255).
	maxName = 255
	// Linux's longest symlink target (PATH_MAX less the NUL).
	maxSymlink = 4095
	// At most this many entries follow one directory header.
	maxDirRun = 256
)

// Basic inode types; the extended ones are these plus 7.
const (
	typeDir = iota + 1
	typeFile
	typeSymlink
	typeBlock
	typeChar
	typeFifo
	typeSocket
)

// Writer writes one squashfs image. Add entries in the walker's order, then
// Close. A Writer is not safe for concurrent use; after an error every
// later call returns it, and the file must be discarded. Close must be
// called in any case: it stops the compressors.
type Writer struct {
	f      *os.File
	bs     int
	log    uint16
	mtime  uint32
	verity bool
	enc    *zstd.Encoder

	root  *node
	stack []*node // the open directories, root first
	ids   idTable
	xat   xattrTable

	out   *output        // owned by the pipeline's writer until it ends
	frags []*fragment    // in index order; filled in by the pipeline
	cur   *job           // the fragment block being filled, or nil
	free  chan *job      // idle jobs: bounds the data held in memory
	work  chan *job      // to the compressors
	order chan *job      // to the writer, in file order
	wg    sync.WaitGroup // compressors
	done  chan struct{}  // the pipeline's writer has ended
	zeros []byte
	// Tails (small files, ends of big ones) by content, to store each
	// once; scratch holds one while it is looked up.
	tails   map[[sha256.Size]byte]tailLoc
	scratch []byte

	entries int
	err     error
	closed  bool
}

// NewWriter starts an image in f, a new empty file opened read-write (the
// superblock is written last at offset 0, and with Verity the first 4 KiB
// are read back to hash them).
func NewWriter(f *os.File, opts Options) (*Writer, error) {
	bs := opts.BlockSize
	if bs == 0 {
		bs = 128 << 10
	}
	if bs < 4<<10 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("sqfs: block size %d is not a power of two from 4 KiB to 1 MiB", bs)
	}
	level := opts.Level
	if level == 0 {
		level = 3
	}
	if level < 1 || level > 22 {
		return nil, fmt.Errorf("sqfs: zstd level %d is not in 1..22", level)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// The kernel decompresses with a window of max(block size, 8 KiB):
	// single-segment frames declare their content size as the window, so
	// no frame asks for more than the block it holds.
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(workers),
		zstd.WithWindowSize(max(bs, metaSize)),
		zstd.WithSingleSegment(true),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("sqfs: zstd: %w", err)
	}
	w := &Writer{
		f:       f,
		bs:      bs,
		log:     uint16(bits.TrailingZeros(uint(bs))),
		mtime:   clampTime(opts.ModTime),
		verity:  opts.Verity,
		enc:     enc,
		zeros:   make([]byte, bs),
		tails:   map[[sha256.Size]byte]tailLoc{},
		scratch: make([]byte, bs),
	}
	w.root = &node{kind: typeDir, mode: 0o755, mtime: w.mtime, xattr: noXattr}
	w.root.uid, _ = w.ids.index(0)
	w.root.gid = w.root.uid
	w.stack = []*node{w.root}
	w.xat.kv = newMeta(enc)
	w.out = &output{w: bufio.NewWriterSize(f, 1<<20)}
	if opts.Verity {
		w.out.tree = verity.NewTree(nil)
	}
	// The superblock's place; its bytes are only known at Close.
	if err := w.out.write(make([]byte, superblockSize)); err != nil {
		return nil, fmt.Errorf("sqfs: %w", err)
	}
	w.startPipeline(workers)
	return w, nil
}

// node is one inode. Hardlinks are several directory entries of one node.
type node struct {
	kind     uint8 // basic inode type
	mode     uint16
	uid, gid uint16 // id table indexes
	mtime    uint32
	nlink    uint32 // directory entries naming it (dirs: computed at Close)
	xattr    uint32 // xattr id or noXattr
	rdev     uint32
	target   string    // symlink target
	file     *fileData // regular files
	children []dirent  // directories, sorted by name

	ino     uint32 // inode number, assigned at Close
	ref     uint64 // inode table reference, set when written
	written bool
}

type dirent struct {
	name string
	n    *node
}

// fileData is where a regular file's data went. The pipeline's writer fills
// in start, blocks and sparse; Close reads them after the pipeline ends.
type fileData struct {
	size    int64
	start   int64
	blocks  []uint32 // size fields of the full blocks
	sparse  int64    // bytes in holes
	frag    uint32   // fragment index or noFragment
	fragOff uint32
}

// fragment is a fragment table entry, filled in when its block is written.
type fragment struct {
	start int64
	size  uint32
}

// Add adds the entry h; content holds h.Size bytes for a regular file (nil
// is allowed when the size is 0) and is ignored otherwise. Names are
// relative, parents come before their members and each directory's members
// in bytewise order, as the upper-dir walker emits them.
func (w *Writer) Add(h *tar.Header, content io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("sqfs: Add after Close")
	}
	if err := w.add(h, content); err != nil {
		w.err = err
		return err
	}
	w.entries++
	return nil
}

func (w *Writer) add(h *tar.Header, content io.Reader) error {
	name := h.Name
	if h.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("sqfs: entry %q: %w", h.Name, err)
	}
	dir, base := path.Split(name)
	parent, err := w.parent(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return fmt.Errorf("sqfs: entry %q: %w", h.Name, err)
	}
	if k := len(parent.children); k > 0 {
		switch last := parent.children[k-1].name; {
		case base == last:
			return fmt.Errorf("sqfs: entry %q: duplicate name", h.Name)
		case base < last:
			return fmt.Errorf("sqfs: entry %q: out of order: it sorts before %q, added earlier", h.Name, path.Join(dir, last))
		}
	}
	if h.Typeflag == tar.TypeLink {
		target := w.lookup(h.Linkname)
		if target == nil || target.kind == typeDir {
			return fmt.Errorf("sqfs: entry %q: hardlink to %q, which is not an earlier non-directory entry", h.Name, h.Linkname)
		}
		target.nlink++
		parent.children = append(parent.children, dirent{base, target})
		return nil
	}
	n := &node{mode: uint16(h.Mode & 0o7777), mtime: clampTime(h.ModTime), nlink: 1, xattr: noXattr}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old writers' regular files
		n.kind = typeFile
	case tar.TypeDir:
		n.kind = typeDir
	case tar.TypeSymlink:
		n.kind = typeSymlink
		if h.Linkname == "" || len(h.Linkname) > maxSymlink || strings.IndexByte(h.Linkname, 0) >= 0 {
			return fmt.Errorf("sqfs: entry %q: symlink target of %d bytes (1..%d without NUL)", h.Name, len(h.Linkname), maxSymlink)
		}
		n.target = h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		n.kind = typeChar
		if h.Typeflag == tar.TypeBlock {
			n.kind = typeBlock
		}
		// The kernel decodes rdev with new_decode_dev: 12 bits of
		// major, 20 of minor.
		if h.Devmajor < 0 || h.Devmajor > 0xfff || h.Devminor < 0 || h.Devminor > 0xfffff {
			return fmt.Errorf("sqfs: entry %q: device %d:%d out of range (major < 4096, minor < 1048576)", h.Name, h.Devmajor, h.Devminor)
		}
		major, minor := uint32(h.Devmajor), uint32(h.Devminor)
		n.rdev = minor&0xff | major<<8 | (minor&^0xff)<<12
	case tar.TypeFifo:
		n.kind = typeFifo
	default:
		return fmt.Errorf("sqfs: entry %q: unsupported type %q", h.Name, h.Typeflag)
	}
	if h.Uid < 0 || int64(h.Uid) > math.MaxUint32 || h.Gid < 0 || int64(h.Gid) > math.MaxUint32 {
		return fmt.Errorf("sqfs: entry %q: uid/gid %d/%d out of range", h.Name, h.Uid, h.Gid)
	}
	if n.uid, err = w.ids.index(uint32(h.Uid)); err == nil {
		n.gid, err = w.ids.index(uint32(h.Gid))
	}
	if err != nil {
		return fmt.Errorf("sqfs: entry %q: %w", h.Name, err)
	}
	if n.xattr, err = w.xat.add(h.PAXRecords); err != nil {
		return fmt.Errorf("sqfs: entry %q: %w", h.Name, err)
	}
	if n.kind == typeFile {
		if h.Size < 0 {
			return fmt.Errorf("sqfs: entry %q: negative size %d", h.Name, h.Size)
		}
		if h.Size > 0 && content == nil {
			return fmt.Errorf("sqfs: entry %q: no content for %d bytes", h.Name, h.Size)
		}
		if n.file, err = w.addData(h.Size, content); err != nil {
			return fmt.Errorf("sqfs: entry %q: %w", h.Name, err)
		}
	}
	parent.children = append(parent.children, dirent{base, n})
	if n.kind == typeDir {
		w.stack = append(w.stack, n)
	}
	return nil
}

// checkName rejects what cannot be a relative path of clean components.
func checkName(name string) error {
	if name == "" || name[0] == '/' {
		return errors.New("name must be a non-empty relative path")
	}
	for c := range strings.SplitSeq(name, "/") {
		switch {
		case c == "" || c == "." || c == "..":
			return fmt.Errorf("name has a component %q", c)
		case len(c) > maxName:
			return fmt.Errorf("name component of %d bytes (at most %d)", len(c), maxName)
		case strings.IndexByte(c, 0) >= 0:
			return errors.New("name contains NUL")
		}
	}
	return nil
}

// parent returns the open directory dir ("" for the root), closing the
// directories the stream has left. Entries come depth-first, so the parent
// of every entry is on the stack of open directories.
func (w *Writer) parent(dir string) (*node, error) {
	depth := 0
	if dir != "" {
		depth = strings.Count(dir, "/") + 1
	}
	if depth < len(w.stack) && w.onStack(dir, depth) {
		w.stack = w.stack[:depth+1]
		return w.stack[depth], nil
	}
	switch n := w.lookup(dir); {
	case n == nil:
		return nil, fmt.Errorf("parent directory %q was not added", dir)
	case n.kind != typeDir:
		return nil, fmt.Errorf("parent %q is not a directory", dir)
	default:
		return nil, fmt.Errorf("out of order: directory %q was already left", dir)
	}
}

// onStack reports whether the open directory at depth is dir: the names of
// the stack are the last children of each level.
func (w *Writer) onStack(dir string, depth int) bool {
	for i := depth; i > 0; i-- {
		d := w.stack[i-1]
		last := d.children[len(d.children)-1]
		if last.n != w.stack[i] {
			return false
		}
		j := strings.LastIndexByte(dir, '/')
		if dir[j+1:] != last.name {
			return false
		}
		if j < 0 {
			dir = ""
		} else {
			dir = dir[:j]
		}
	}
	return dir == ""
}

// lookup finds an added entry by name through the sorted directories.
func (w *Writer) lookup(name string) *node {
	name = strings.TrimSuffix(name, "/")
	n := w.root
	if name == "" {
		return n
	}
	for c := range strings.SplitSeq(name, "/") {
		if n.kind != typeDir {
			return nil
		}
		i := sort.Search(len(n.children), func(i int) bool { return n.children[i].name >= c })
		if i == len(n.children) || n.children[i].name != c {
			return nil
		}
		n = n.children[i].n
	}
	return n
}

// clampTime returns t in squashfs's unsigned 32-bit seconds, clamped.
func clampTime(t time.Time) uint32 {
	if t.IsZero() {
		return 0
	}
	return uint32(min(max(t.Unix(), 0), math.MaxUint32))
}

// idTable is the uid/gid table, in order of first use.
type idTable struct {
	ids []uint32
	idx map[uint32]uint16
}

func (t *idTable) index(id uint32) (uint16, error) {
	if i, ok := t.idx[id]; ok {
		return i, nil
	}
	if len(t.ids) == math.MaxUint16 {
		return 0, fmt.Errorf("more than %d distinct uids and gids", math.MaxUint16)
	}
	if t.idx == nil {
		t.idx = map[uint32]uint16{}
	}
	i := uint16(len(t.ids))
	t.ids = append(t.ids, id)
	t.idx[id] = i
	return i, nil
}

// Close finishes the data, writes the tables and the superblock, and with
// Verity the hash tree. It does not close f.
func (w *Writer) Close() (Result, error) {
	if w.closed {
		return Result{}, errors.New("sqfs: Close called twice")
	}
	w.closed = true
	if w.err == nil && w.cur != nil && len(w.cur.in) > 0 {
		w.flushFragment()
	}
	perr := w.stopPipeline()
	defer w.enc.Close()
	if w.err != nil {
		return Result{}, w.err
	}
	if perr != nil {
		return Result{}, perr
	}
	res, err := w.finish()
	if err != nil {
		w.err = fmt.Errorf("sqfs: %w", err)
		return Result{}, w.err
	}
	res.Entries = w.entries
	return res, nil
}

// finish writes everything after the data.
func (w *Writer) finish() (Result, error) {
	o := w.out
	inodes, dirs, count, rootRef, err := w.layout()
	if err != nil {
		return Result{}, err
	}
	var sb superblock
	sb.inodes = count
	sb.rootRef = rootRef
	sb.inodeTable = o.off
	if err := o.write(inodes); err != nil {
		return Result{}, err
	}
	sb.dirTable = o.off
	if err := o.write(dirs); err != nil {
		return Result{}, err
	}

	frags := make([]byte, 0, 16*len(w.frags))
	for _, fr := range w.frags {
		frags = binary.LittleEndian.AppendUint64(frags, uint64(fr.start))
		frags = binary.LittleEndian.AppendUint32(frags, fr.size)
		frags = binary.LittleEndian.AppendUint32(frags, 0)
	}
	if sb.fragTable, err = w.writeTable(frags, nil); err != nil {
		return Result{}, err
	}
	ids := make([]byte, 0, 4*len(w.ids.ids))
	for _, id := range w.ids.ids {
		ids = binary.LittleEndian.AppendUint32(ids, id)
	}
	if sb.idTable, err = w.writeTable(ids, nil); err != nil {
		return Result{}, err
	}
	sb.xattrTable = -1 // none
	if len(w.xat.entries) > 0 {
		kvStart := o.off
		if err := o.write(w.xat.kv.finish()); err != nil {
			return Result{}, err
		}
		hdr := binary.LittleEndian.AppendUint64(nil, uint64(kvStart))
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(w.xat.entries)/16))
		hdr = binary.LittleEndian.AppendUint32(hdr, 0)
		if sb.xattrTable, err = w.writeTable(w.xat.entries, hdr); err != nil {
			return Result{}, err
		}
	}
	used := o.off
	if pad := used % verity.BlockSize; pad != 0 {
		if err := o.write(make([]byte, verity.BlockSize-pad)); err != nil {
			return Result{}, err
		}
	}
	if err := o.w.Flush(); err != nil {
		return Result{}, err
	}

	sb.mtime = w.mtime
	sb.blockSize = uint32(w.bs)
	sb.blockLog = w.log
	sb.fragments = uint32(len(w.frags))
	sb.ids = uint16(len(w.ids.ids))
	sb.flags = flagAlwaysFragments | flagDuplicates
	if len(w.xat.entries) == 0 {
		sb.flags |= flagNoXattrs
	}
	sb.bytesUsed = used
	if _, err := w.f.WriteAt(sb.bytes(), 0); err != nil {
		return Result{}, err
	}
	res := Result{Size: o.off}
	if o.tree == nil {
		return res, nil
	}
	first := make([]byte, verity.BlockSize)
	if _, err := w.f.ReadAt(first, 0); err != nil {
		return Result{}, fmt.Errorf("read back the first block: %w", err)
	}
	if err := o.tree.SetBlock(0, first); err != nil {
		return Result{}, err
	}
	root, err := o.tree.Finish(o.w)
	if err != nil {
		return Result{}, err
	}
	if err := o.w.Flush(); err != nil {
		return Result{}, err
	}
	res.RootHash = hex.EncodeToString(root)
	res.Size += verity.HashAreaSize(o.off / verity.BlockSize)
	return res, nil
}

// writeTable writes entries as a metadata table followed by its index, the
// file positions of its metadata blocks (after hdr, for the xattr table),
// and returns where the index (or hdr) starts.
func (w *Writer) writeTable(entries, hdr []byte) (int64, error) {
	m := newMeta(w.enc)
	m.write(entries)
	start := w.out.off
	blocks := m.finish()
	if err := w.out.write(blocks); err != nil {
		return 0, err
	}
	index := hdr
	for _, b := range m.starts {
		index = binary.LittleEndian.AppendUint64(index, uint64(start)+uint64(b))
	}
	at := w.out.off
	return at, w.out.write(index)
}

type superblock struct {
	inodes, mtime, blockSize, fragments uint32
	blockLog, flags, ids                uint16
	rootRef                             uint64
	bytesUsed                           int64
	idTable, xattrTable                 int64
	inodeTable, dirTable, fragTable     int64
}

func (s *superblock) bytes() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, superblockSize)
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, s.inodes)
	b = le.AppendUint32(b, s.mtime)
	b = le.AppendUint32(b, s.blockSize)
	b = le.AppendUint32(b, s.fragments)
	b = le.AppendUint16(b, zstdCompression)
	b = le.AppendUint16(b, s.blockLog)
	b = le.AppendUint16(b, s.flags)
	b = le.AppendUint16(b, s.ids)
	b = le.AppendUint16(b, 4) // version 4.0
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, s.rootRef)
	b = le.AppendUint64(b, uint64(s.bytesUsed))
	b = le.AppendUint64(b, uint64(s.idTable))
	b = le.AppendUint64(b, uint64(s.xattrTable))
	b = le.AppendUint64(b, uint64(s.inodeTable))
	b = le.AppendUint64(b, uint64(s.dirTable))
	b = le.AppendUint64(b, uint64(s.fragTable))
	b = le.AppendUint64(b, invalid64) // no export table
	return b
}

// output is the file written sequentially, and the verity tree fed with it.
type output struct {
	w    *bufio.Writer
	tree *verity.Tree
	off  int64

	mu  sync.Mutex // err is read by Add while the pipeline writes
	err error
}

// fail records the pipeline's first error.
func (o *output) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = fmt.Errorf("sqfs: write image: %w", err)
	}
}

// failed returns the pipeline's error, so that Add stops early.
func (o *output) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

func (o *output) write(p []byte) error {
	if _, err := o.w.Write(p); err != nil {
		return err
	}
	if o.tree != nil {
		o.tree.Write(p)
	}
	o.off += int64(len(p))
	return nil
}

// sortedXattrs returns the SCHILY.xattr records of recs sorted by name.
func sortedXattrs(recs map[string]string) []string {
	var names []string
	for k := range recs {
		if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}
