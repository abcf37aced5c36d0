package sqfs

import (
	"encoding/binary"
	"fmt"
	"math"
)

// layout serializes the inode and directory tables. Inodes are written in
// post-order (a directory's members before the directory) because a
// directory's listing holds its members' inode references and its inode
// holds the listing's reference; inode numbers follow the same order, so
// the members of a directory have close numbers and share directory
// headers. The root is written last and has the highest number.
func (w *Writer) layout() (inodes, dirs []byte, count uint32, rootRef uint64, err error) {
	next := uint32(1)
	var number func(d *node)
	number = func(d *node) {
		for _, c := range d.children {
			if c.n.kind == typeDir {
				number(c.n)
			} else if c.n.ino == 0 {
				c.n.ino = next
				next++
			}
		}
		d.ino = next
		next++
	}
	number(w.root)
	count = next - 1

	l := &layouter{w: w, inodes: newMeta(w.enc), dirs: newMeta(w.enc)}
	var emit func(d *node, parent uint32) error
	emit = func(d *node, parent uint32) error {
		subdirs := uint32(0)
		for _, c := range d.children {
			switch {
			case c.n.kind == typeDir:
				subdirs++
				if err := emit(c.n, d.ino); err != nil {
					return err
				}
			case !c.n.written:
				if err := l.inode(c.n); err != nil {
					return err
				}
			}
		}
		d.nlink = 2 + subdirs
		return l.dir(d, parent)
	}
	if err := emit(w.root, count+1); err != nil {
		return nil, nil, 0, 0, err
	}
	return l.inodes.finish(), l.dirs.finish(), count, w.root.ref, nil
}

type layouter struct {
	w      *Writer
	inodes *meta
	dirs   *meta
	b      []byte
}

// header starts an inode: the fields all types share.
func (l *layouter) header(n *node, typ uint16) {
	le := binary.LittleEndian
	l.b = le.AppendUint16(l.b[:0], typ)
	l.b = le.AppendUint16(l.b, n.mode)
	l.b = le.AppendUint16(l.b, n.uid)
	l.b = le.AppendUint16(l.b, n.gid)
	l.b = le.AppendUint32(l.b, n.mtime)
	l.b = le.AppendUint32(l.b, n.ino)
}

func (l *layouter) put(n *node) {
	n.ref = l.inodes.ref()
	n.written = true
	l.inodes.write(l.b)
}

// inode writes a non-directory inode, in its basic form where that can
// express it and its extended form (type + 7) otherwise.
func (l *layouter) inode(n *node) error {
	le := binary.LittleEndian
	ext := n.xattr != noXattr
	switch n.kind {
	case typeFile:
		f := n.file
		if f.size >= 1<<32 || f.start >= 1<<32 || f.sparse != 0 || n.nlink > 1 {
			ext = true
		}
		if ext {
			l.header(n, typeFile+7)
			l.b = le.AppendUint64(l.b, uint64(f.start))
			l.b = le.AppendUint64(l.b, uint64(f.size))
			l.b = le.AppendUint64(l.b, uint64(f.sparse))
			l.b = le.AppendUint32(l.b, n.nlink)
			l.b = le.AppendUint32(l.b, f.frag)
			l.b = le.AppendUint32(l.b, f.fragOff)
			l.b = le.AppendUint32(l.b, n.xattr)
		} else {
			l.header(n, typeFile)
			l.b = le.AppendUint32(l.b, uint32(f.start))
			l.b = le.AppendUint32(l.b, f.frag)
			l.b = le.AppendUint32(l.b, f.fragOff)
			l.b = le.AppendUint32(l.b, uint32(f.size))
		}
		for _, s := range f.blocks {
			l.b = le.AppendUint32(l.b, s)
		}
	case typeSymlink:
		l.header(n, typeSymlink+7*b2u(ext))
		l.b = le.AppendUint32(l.b, n.nlink)
		l.b = le.AppendUint32(l.b, uint32(len(n.target)))
		l.b = append(l.b, n.target...)
		if ext {
			l.b = le.AppendUint32(l.b, n.xattr)
		}
	case typeBlock, typeChar:
		l.header(n, uint16(n.kind)+7*b2u(ext))
		l.b = le.AppendUint32(l.b, n.nlink)
		l.b = le.AppendUint32(l.b, n.rdev)
		if ext {
			l.b = le.AppendUint32(l.b, n.xattr)
		}
	case typeFifo, typeSocket:
		l.header(n, uint16(n.kind)+7*b2u(ext))
		l.b = le.AppendUint32(l.b, n.nlink)
		if ext {
			l.b = le.AppendUint32(l.b, n.xattr)
		}
	default:
		return fmt.Errorf("internal error: inode type %d", n.kind)
	}
	l.put(n)
	return nil
}

func b2u(b bool) uint16 {
	if b {
		return 1
	}
	return 0
}

// dirIndex is an entry of an extended directory inode's index: where in
// the listing a header starts in a new metadata block, and the name of its
// first member. The kernel's lookup skips to the last index whose name is
// not after the wanted one instead of reading the whole listing.
type dirIndex struct {
	off   uint32 // offset in the listing
	block uint32 // directory table offset of the metadata block
	name  string
}

// dir writes d's listing to the directory table, then its inode. Members
// are grouped under headers that carry their inode block and a base inode
// number: a run ends after 256 members, when a member's inode is in
// another block or its number is more than ±32767 from the base, and when
// the listing crosses into a new metadata block (which then gets an index
// entry).
func (l *layouter) dir(d *node, parent uint32) error {
	le := binary.LittleEndian
	m := l.dirs
	start := m.ref()
	base := m.pos
	lastBlock := base / metaSize
	var index []dirIndex
	var buf []byte
	for i := 0; i < len(d.children); {
		first := d.children[i].n
		block := uint32(first.ref >> 16)
		hdrPos := m.pos
		if b := hdrPos / metaSize; b != lastBlock {
			index = append(index, dirIndex{uint32(hdrPos - base), m.blockStart(hdrPos), d.children[i].name})
			lastBlock = b
		}
		j := i + 1
		pos := hdrPos + 12 + 8 + int64(len(d.children[i].name))
		for ; j < len(d.children) && j-i < maxDirRun; j++ {
			c := d.children[j].n
			delta := int64(c.ino) - int64(first.ino)
			if uint32(c.ref>>16) != block || delta < math.MinInt16 || delta > math.MaxInt16 || pos/metaSize != hdrPos/metaSize {
				break
			}
			pos += 8 + int64(len(d.children[j].name))
		}
		buf = le.AppendUint32(buf[:0], uint32(j-i-1))
		buf = le.AppendUint32(buf, block)
		buf = le.AppendUint32(buf, first.ino)
		for _, c := range d.children[i:j] {
			buf = le.AppendUint16(buf, uint16(c.n.ref&0xffff))
			buf = le.AppendUint16(buf, uint16(int16(int64(c.n.ino)-int64(first.ino))))
			buf = le.AppendUint16(buf, uint16(c.n.kind))
			buf = le.AppendUint16(buf, uint16(len(c.name)-1))
			buf = append(buf, c.name...)
		}
		m.write(buf)
		i = j
	}
	size := m.pos - base + 3 // the kernel counts "." and ".." as 3 bytes
	if size > math.MaxUint32 || len(index) > math.MaxUint16 {
		return fmt.Errorf("directory listing of %d bytes is too large", size)
	}
	startBlock, offset := uint32(start>>16), uint16(start&0xffff)
	if d.xattr != noXattr || size > math.MaxUint16 || len(index) > 0 {
		l.header(d, typeDir+7)
		l.b = le.AppendUint32(l.b, d.nlink)
		l.b = le.AppendUint32(l.b, uint32(size))
		l.b = le.AppendUint32(l.b, startBlock)
		l.b = le.AppendUint32(l.b, parent)
		l.b = le.AppendUint16(l.b, uint16(len(index)))
		l.b = le.AppendUint16(l.b, offset)
		l.b = le.AppendUint32(l.b, d.xattr)
		for _, x := range index {
			l.b = le.AppendUint32(l.b, x.off)
			l.b = le.AppendUint32(l.b, x.block)
			l.b = le.AppendUint32(l.b, uint32(len(x.name)-1))
			l.b = append(l.b, x.name...)
		}
	} else {
		l.header(d, typeDir)
		l.b = le.AppendUint32(l.b, startBlock)
		l.b = le.AppendUint32(l.b, d.nlink)
		l.b = le.AppendUint16(l.b, uint16(size))
		l.b = le.AppendUint16(l.b, offset)
		l.b = le.AppendUint32(l.b, parent)
	}
	l.put(d)
	return nil
}
