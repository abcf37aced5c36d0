package sqfs

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// meta builds a metadata table: a stream cut into 8 KiB blocks, each
// compressed on its own and preceded by a 2-byte header. Inodes and
// directory listings are addressed by references: the compressed offset of
// their block in the table, and their offset in the uncompressed block.
type meta struct {
	enc    *zstd.Encoder
	cur    []byte   // the block being filled, less than metaSize bytes
	out    []byte   // the finished blocks
	starts []uint32 // offset in out of each finished block
	pos    int64    // uncompressed bytes written
}

func newMeta(enc *zstd.Encoder) *meta {
	return &meta{enc: enc, cur: make([]byte, 0, metaSize)}
}

// ref is the reference of the next byte written.
func (m *meta) ref() uint64 { return uint64(len(m.out))<<16 | uint64(len(m.cur)) }

// blockStart returns the compressed offset of the block holding the
// uncompressed position pos, which must be in a finished block or the
// current one.
func (m *meta) blockStart(pos int64) uint32 {
	if k := pos / metaSize; k < int64(len(m.starts)) {
		return m.starts[k]
	}
	return uint32(len(m.out))
}

func (m *meta) write(p []byte) {
	m.pos += int64(len(p))
	for len(p) > 0 {
		k := min(metaSize-len(m.cur), len(p))
		m.cur = append(m.cur, p[:k]...)
		p = p[k:]
		if len(m.cur) == metaSize {
			m.flush()
		}
	}
}

func (m *meta) flush() {
	m.starts = append(m.starts, uint32(len(m.out)))
	hdr := len(m.out)
	m.out = append(m.out, 0, 0)
	m.out = m.enc.EncodeAll(m.cur, m.out)
	size := len(m.out) - hdr - 2
	if size >= len(m.cur) {
		m.out = append(m.out[:hdr+2], m.cur...)
		size = len(m.cur) | metaUncompressed
	}
	binary.LittleEndian.PutUint16(m.out[hdr:], uint16(size))
	m.cur = m.cur[:0]
}

// finish ends the last block and returns the table.
func (m *meta) finish() []byte {
	if len(m.cur) > 0 {
		m.flush()
	}
	return m.out
}

// xattrTable holds the xattr key/value lists (kv), each distinct list once,
// and the id table (entries) pointing into it, in order of first use.
type xattrTable struct {
	kv      *meta
	entries []byte            // 16 bytes per id: kv reference, count, size
	ids     map[string]uint32 // serialized list → id
}

// Squashfs stores an xattr name as a prefix number and the rest.
var xattrPrefixes = []string{"user.", "trusted.", "security."}

// add returns the xattr id of the SCHILY.xattr records in recs, or noXattr.
func (t *xattrTable) add(recs map[string]string) (uint32, error) {
	names := sortedXattrs(recs)
	if len(names) == 0 {
		return noXattr, nil
	}
	var kv []byte
	size := 0
	for _, name := range names {
		typ := -1
		var rest string
		for i, p := range xattrPrefixes {
			if r, ok := strings.CutPrefix(name, p); ok && r != "" {
				typ, rest = i, r
			}
		}
		if typ < 0 {
			return 0, fmt.Errorf("xattr %q: squashfs stores only user., trusted. and security. xattrs", name)
		}
		val := recs["SCHILY.xattr."+name]
		if len(rest) > 0xffff || len(val) > 1<<16 {
			return 0, fmt.Errorf("xattr %q: name or value too long", name)
		}
		kv = binary.LittleEndian.AppendUint16(kv, uint16(typ))
		kv = binary.LittleEndian.AppendUint16(kv, uint16(len(rest)))
		kv = append(kv, rest...)
		kv = binary.LittleEndian.AppendUint32(kv, uint32(len(val)))
		kv = append(kv, val...)
		// What listxattr needs: the full names with their NULs, and
		// the values.
		size += len(name) + 1 + len(val)
	}
	if id, ok := t.ids[string(kv)]; ok {
		return id, nil
	}
	id := uint32(len(t.entries) / 16)
	t.entries = binary.LittleEndian.AppendUint64(t.entries, t.kv.ref())
	t.entries = binary.LittleEndian.AppendUint32(t.entries, uint32(len(names)))
	t.entries = binary.LittleEndian.AppendUint32(t.entries, uint32(size))
	t.kv.write(kv)
	if t.ids == nil {
		t.ids = map[string]uint32{}
	}
	t.ids[string(kv)] = id
	return id, nil
}
