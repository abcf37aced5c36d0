package sqfs_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/storage/layer/sqfs"
)

// source hands out fuzz bytes, then zeros: a short input makes a small
// tree, never an invalid one.
type source struct {
	b []byte
	i int
}

func (s *source) byte() byte {
	if s.i >= len(s.b) {
		return 0
	}
	s.i++
	return s.b[s.i-1]
}

func (s *source) intn(n int) int { return int(s.byte()) % n }

func (s *source) u32() uint32 {
	return uint32(s.byte()) | uint32(s.byte())<<8 | uint32(s.byte())<<16 | uint32(s.byte())<<24
}

// genTree decodes s into a valid entry stream in the walker's order (each
// directory's members generated sorted, parents first) and options.
func genTree(s *source) ([]entry, sqfs.Options) {
	opts := sqfs.Options{
		BlockSize: 4096 << s.intn(3),
		Level:     []int{1, 3, 7, 12}[s.intn(4)],
		Workers:   1 + s.intn(4),
		ModTime:   epoch,
	}
	bs := opts.BlockSize
	ids := []int{0, 0, 1, 1000, 65534, 65535, 65536, 100000, 1 << 31, 4294967294}
	var es []entry
	var linkable []string
	serial := uint64(0)
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		n := s.intn(6)
		if depth == 0 {
			n += 4
		}
		names := map[string]bool{}
		for range n {
			names[genName(s)] = true
		}
		sorted := make([]string, 0, len(names))
		for name := range names {
			sorted = append(sorted, name)
		}
		slices.Sort(sorted)
		for _, name := range sorted {
			full := prefix + name
			h := &tar.Header{Name: full, Mode: int64(s.u32() & 0o7777), Uid: ids[s.intn(len(ids))], Gid: ids[s.intn(len(ids))],
				ModTime: time.Unix(int64(s.u32()), 0), Format: tar.FormatPAX}
			e := entry{hdr: h}
			kind := s.intn(12)
			if kind == 9 && len(linkable) == 0 || kind == 4 && depth >= 6 {
				kind = 0
			}
			switch kind {
			case 0, 1, 2, 3:
				h.Typeflag = tar.TypeReg
				size := []int{0, 1, 100, bs - 1, bs, bs + 1, 2*bs + 17, 3 * bs, 5000, 20000}[s.intn(10)]
				serial++
				switch s.intn(3) {
				case 0:
					e.data = make([]byte, size) // zero blocks become holes
					if size > bs {
						e.data[size-1] = 1
					}
				default:
					e.data = content(serial, size)
				}
				h.Size = int64(size)
				if size == 0 && s.intn(2) == 0 {
					e.data = nil
				}
			case 4:
				h.Typeflag, h.Name = tar.TypeDir, full+"/"
			case 5:
				h.Typeflag = tar.TypeSymlink
				h.Linkname = strings.Repeat(genName(s)+"/", 1+s.intn(3)) + genName(s)
				if s.intn(8) == 0 {
					h.Linkname = strings.Repeat("x", 4095)
				}
			case 6:
				h.Typeflag = tar.TypeChar
				h.Devmajor, h.Devminor = int64(s.u32()%4096), int64(s.u32()%(1<<20))
			case 7:
				h.Typeflag = tar.TypeBlock
				h.Devmajor, h.Devminor = int64(s.intn(256)), int64(s.intn(256))
			case 8:
				h.Typeflag = tar.TypeFifo
			case 9:
				h.Typeflag, h.Linkname = tar.TypeLink, linkable[s.intn(len(linkable))]
			case 10, 11:
				// An overlay whiteout, as the walker emits it.
				h.Typeflag, h.Mode, h.Uid, h.Gid = tar.TypeChar, 0, 0, 0
			}
			if h.Typeflag != tar.TypeLink {
				genXattrs(s, h)
			}
			es = append(es, e)
			switch h.Typeflag {
			case tar.TypeDir:
				gen(full+"/", depth+1)
			case tar.TypeLink:
			default:
				linkable = append(linkable, full)
			}
		}
	}
	gen("", 0)
	return es, opts
}

const nameChars = "abcdefXYZ0189-_.~+=@%"

func genName(s *source) string {
	if s.intn(16) == 0 {
		return strings.Repeat(string(nameChars[s.intn(len(nameChars))]), 200+s.intn(56))
	}
	n := 1 + s.intn(12)
	b := make([]byte, n)
	for i := range b {
		b[i] = nameChars[s.intn(len(nameChars))]
	}
	if name := string(b); name != "." && name != ".." {
		return name
	}
	return "dot" + string(b)
}

// genXattrs adds xattrs Linux can set on the entry's type: user. only on
// files and directories.
func genXattrs(s *source, h *tar.Header) {
	n := s.intn(8) - 4
	if n <= 0 {
		return
	}
	prefixes := []string{"trusted.", "security."}
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeDir {
		prefixes = append(prefixes, "user.", "user.")
	}
	h.PAXRecords = map[string]string{}
	total := 0 // ext4 keeps an inode's xattrs in one 4 KiB block
	for range n {
		name := prefixes[s.intn(len(prefixes))] + "x" + genName(s)[:1]
		if strings.HasPrefix(name, "security.") {
			name = "security.strata" + name[len("security.x"):]
		}
		val := make([]byte, []int{0, 1, 10, 200, 3000}[s.intn(5)])
		if total += len(name) + len(val) + 16; total > 3000 {
			return
		}
		for i := range val {
			val[i] = s.byte()
		}
		h.PAXRecords["SCHILY.xattr."+name] = string(val)
	}
}

// checkRandom writes the tree of data and reads it back with unsquashfs
// and, as root, by extraction and through the kernel.
func checkRandom(t *testing.T, data []byte, kernel bool) {
	es, opts := genTree(&source{b: data})
	img, _ := build(t, es, opts)
	ws := model(es, epoch)
	checkListing(t, img, ws)
	if t.Failed() {
		t.Logf("tree: %s", describe(es))
	}
	if !isRoot {
		return
	}
	checkTree(t, extract(t, img), ws, treeCheck{xattrs: true})
	if kernel {
		checkTree(t, mountKernel(t, img), ws, treeCheck{xattrs: true, nlink: true, symlinkTime: true})
	}
}

func describe(es []entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n%c %s size=%d link=%q", e.hdr.Typeflag, e.hdr.Name, e.hdr.Size, e.hdr.Linkname)
	}
	return b.String()
}

func FuzzWriter(f *testing.F) {
	need(f, "unsquashfs")
	f.Add([]byte{})
	f.Add([]byte("squashfs"))
	f.Add(bytes.Repeat([]byte{4, 0xff, 3, 9}, 40))
	f.Add(randomBytes(1, 1500))
	f.Add(randomBytes(2, 4000))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRandom(t, data, false)
	})
}

func randomBytes(seed uint64, n int) []byte {
	r := mrand.New(mrand.NewPCG(seed, 11))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Random trees from 50 seeds, and each written twice with other worker
// counts must give the same bytes.
func TestRandomTrees(t *testing.T) {
	need(t, "unsquashfs")
	n := 50
	if testing.Short() {
		n = 10
	}
	for seed := range uint64(n) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			data := randomBytes(100+seed, 1000+int(seed)*60)
			checkRandom(t, data, true)
			es, opts := genTree(&source{b: data})
			a, _ := build(t, es, opts)
			opts.Workers = 7
			b, _ := build(t, es, opts)
			ab, _ := os.ReadFile(a)
			bb, _ := os.ReadFile(b)
			if !bytes.Equal(ab, bb) {
				t.Error("the image depends on the number of workers")
			}
		})
	}
}
