package sqfs_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/storage/layer/sqfs"
)

var epoch = time.Unix(1700000000, 0)

func reg(name string, mode int64, data []byte) entry {
	return entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}, data: data}
}

func dir(name string, mode int64) entry {
	return entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: epoch.Add(-time.Hour)}}
}

func hdr(typ byte, name string, mode int64) entry {
	return entry{hdr: &tar.Header{Typeflag: typ, Name: name, Mode: mode, ModTime: epoch.Add(-2 * time.Hour)}}
}

func withXattrs(e entry, kv ...string) entry {
	e.hdr.PAXRecords = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		e.hdr.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
	}
	return e
}

// sample covers every type and the corners of the format.
func sample() []entry {
	const bs = 128 << 10
	var es []entry
	add := func(e ...entry) { es = append(es, e...) }
	add(reg("a-empty", 0o644, nil))
	add(dir("bin", 0o755))
	su := reg("bin/su", 0o4755, content(1, 3000))
	add(withXattrs(su, "security.capability", "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	add(reg("bin/sgid", 0o2711, []byte("#!/bin/sh\n")))
	add(reg("bin/tool", 0o755, content(2, 3*bs+1234)))
	add(reg("bin/exact", 0o755, content(3, 2*bs)))
	sparse := make([]byte, 5*bs+3)
	copy(sparse[2*bs:], "data in the middle")
	copy(sparse[5*bs:], "end")
	add(reg("bin/sparse", 0o644, sparse))
	add(reg("bin/allzero", 0o644, make([]byte, 2*bs)))
	add(dir("dev", 0o755))
	null := hdr(tar.TypeChar, "dev/null", 0o666)
	null.hdr.Devmajor, null.hdr.Devminor = 1, 3
	sda := hdr(tar.TypeBlock, "dev/sda", 0o660)
	sda.hdr.Devmajor, sda.hdr.Devminor, sda.hdr.Gid = 8, 0, 6
	big := hdr(tar.TypeChar, "dev/bigminor", 0o600)
	big.hdr.Devmajor, big.hdr.Devminor = 4095, 1048575
	add(null, sda, big, hdr(tar.TypeFifo, "dev/fifo", 0o600))
	add(withXattrs(dir("etc", 0o755), "trusted.overlay.opaque", "y", "user.overlay.opaque", "y", "user.comment", "a directory"))
	cfg := reg("etc/config", 0o640, []byte("key=value\n"))
	cfg.hdr.Uid, cfg.hdr.Gid = 100000, 4000000000
	add(withXattrs(cfg, "user.a", "", "user.b", strings.Repeat("v", 300), "trusted.x", "1"))
	add(entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "etc/hard", Linkname: "etc/config", ModTime: epoch}})
	add(entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/link", Linkname: "config", Mode: 0o777, ModTime: epoch}})
	add(hdr(tar.TypeChar, "etc/whiteout", 0)) // an overlay whiteout: char 0/0
	add(dir("long", 0o700))
	add(reg("long/"+strings.Repeat("n", 255), 0o600, []byte("long name")))
	add(entry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "long/target", Linkname: strings.Repeat("t/", 2000) + "end", Mode: 0o777, ModTime: epoch}})
	add(dir("many", 0o755))
	for i := range 350 {
		name := fmt.Sprintf("many/%s-%04d", strings.Repeat("x", 40), i)
		if i%50 == 7 {
			add(dir(name, 0o755), reg(name+"/inner", 0o644, []byte(name)))
		} else {
			add(reg(name, 0o644, []byte(name)))
		}
	}
	add(reg("dup-1", 0o644, content(9, 5000)), reg("dup-2", 0o600, content(9, 5000)))
	add(reg("dup-tail", 0o644, append(content(10, bs), content(9, 5000)...)))
	add(dir("sticky", 0o1777))
	p := "deep"
	add(dir(p, 0o755))
	for i := range 40 {
		p += fmt.Sprintf("/d%d", i)
		add(dir(p, 0o755))
	}
	add(reg(p+"/bottom", 0o644, []byte("bottom")))
	add(entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "z-hard-tool", Linkname: "bin/tool", ModTime: epoch}})
	add(entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "z-hard-null", Linkname: "dev/null", ModTime: epoch}})
	sortEntries(es)
	return es
}

func TestRoundTripUnsquashfs(t *testing.T) {
	need(t, "unsquashfs")
	es := sample()
	img, res := build(t, es, sqfs.Options{ModTime: epoch})
	if res.Entries != len(es) {
		t.Errorf("Entries = %d, want %d", res.Entries, len(es))
	}
	if st, err := os.Stat(img); err != nil || st.Size() != res.Size || res.Size%4096 != 0 {
		t.Errorf("image size %v (%v), Result.Size %d: want equal and a multiple of 4096", st.Size(), err, res.Size)
	}
	ws := model(es, epoch)
	checkListing(t, img, ws)
	stat := run(t, "unsquashfs", "-s", img)
	for _, s := range []string{"zstd", "Block size 131072", "Filesystem is not exportable via NFS",
		"Xattrs are compressed", "Number of fragments", "Number of ids 4", "Number of inodes " + fmt.Sprint(inodes(ws))} {
		if !strings.Contains(stat, s) {
			t.Errorf("unsquashfs -s lacks %q:\n%s", s, stat)
		}
	}
	if !isRoot {
		t.Log("not root: extraction skipped")
		return
	}
	checkTree(t, extract(t, img), ws, treeCheck{xattrs: true})
}

// inodes counts the distinct inodes of a model.
func inodes(ws []*want) int {
	n := 0
	for _, w := range ws {
		if w.typ == tar.TypeDir || w.group == w.name {
			n++
		}
	}
	return n
}

// Equal small files and tails are stored once.
func TestDuplicateTails(t *testing.T) {
	one, _ := build(t, []entry{reg("a", 0o644, randomBytes(5, 50000))}, sqfs.Options{BlockSize: 4096})
	two, _ := build(t, []entry{reg("a", 0o644, randomBytes(5, 50000)), reg("b", 0o644, randomBytes(5, 50000))}, sqfs.Options{BlockSize: 4096})
	st1, _ := os.Stat(one)
	st2, _ := os.Stat(two)
	// b's 12 full blocks are stored again, its 848-byte tail is not.
	if d := st2.Size() - st1.Size(); d > 12*4096+4096 {
		t.Errorf("the second copy adds %d bytes", d)
	}
}

func TestKernelMount(t *testing.T) {
	es := sample()
	img, _ := build(t, es, sqfs.Options{ModTime: epoch})
	mnt := mountKernel(t, img)
	checkTree(t, mnt, model(es, epoch), treeCheck{nlink: true, symlinkTime: true, xattrs: true})
}

func TestSquashfuse(t *testing.T) {
	need(t, "squashfuse", "fusermount3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	es := sample()
	img, _ := build(t, es, sqfs.Options{ModTime: epoch})
	mnt := t.TempDir()
	run(t, "squashfuse", img, mnt)
	defer func() {
		if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
			t.Errorf("fusermount3 -u: %v\n%s", err, out)
		}
	}()
	// squashfuse 0.1.105 swaps the trusted. and security. prefixes, fails
	// to read empty values and numbers inodes itself; it does the same
	// with mksquashfs's images.
	quirks := func(m map[string]string) map[string]string {
		var out map[string]string
		for k, v := range m {
			if v == "" {
				continue
			}
			if r, ok := strings.CutPrefix(k, "trusted."); ok {
				k = "security." + r
			} else if r, ok := strings.CutPrefix(k, "security."); ok {
				k = "trusted." + r
			}
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
		return out
	}
	checkTree(t, mnt, model(es, epoch), treeCheck{nlink: true, symlinkTime: true, xattrs: true, noInodes: true, fixXattrs: quirks})
}

func TestReproducible(t *testing.T) {
	es := sample()
	var first []byte
	for _, workers := range []int{1, 4, 1, 3} {
		img, _ := build(t, es, sqfs.Options{ModTime: epoch, Workers: workers, Verity: true})
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatalf("the image with %d workers differs from the first", workers)
		}
	}
}

func TestBlockSizes(t *testing.T) {
	need(t, "unsquashfs")
	es := sample()
	for _, bs := range []int{4 << 10, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			img, _ := build(t, es, sqfs.Options{ModTime: epoch, BlockSize: bs, Level: 19})
			ws := model(es, epoch)
			checkListing(t, img, ws)
			if isRoot {
				checkTree(t, mountKernel(t, img), ws, treeCheck{nlink: true, symlinkTime: true, xattrs: true})
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	need(t, "unsquashfs")
	img, res := build(t, nil, sqfs.Options{ModTime: epoch, Verity: true})
	if res.Entries != 0 || res.RootHash == "" {
		t.Errorf("Result %+v", res)
	}
	checkListing(t, img, model(nil, epoch))
}

func TestRejects(t *testing.T) {
	ok := []entry{dir("a", 0o755), reg("a/f", 0o644, []byte("x"))}
	cases := []struct {
		name string
		es   []entry
		msg  string
	}{
		{"out of order", []entry{reg("b", 0o644, nil), reg("a", 0o644, nil)}, `"a": out of order`},
		{"duplicate", []entry{reg("a", 0o644, nil), reg("a", 0o644, nil)}, `"a": duplicate`},
		{"no parent", []entry{reg("x/f", 0o644, nil)}, `"x/f": parent directory "x" was not added`},
		{"left dir", append(append([]entry{}, ok...), reg("b", 0o644, nil), reg("a/g", 0o644, nil)), `"a/g": out of order`},
		{"parent not dir", []entry{reg("a", 0o644, nil), reg("a/f", 0o644, nil)}, `"a/f": parent "a" is not a directory`},
		{"hardlink unknown", []entry{{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "l", Linkname: "nope"}}}, `"l": hardlink to "nope"`},
		{"hardlink dir", append(append([]entry{}, ok...), entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "l", Linkname: "a"}}), `"l": hardlink to "a"`},
		{"type", []entry{{hdr: &tar.Header{Typeflag: 'Z', Name: "z"}}}, `"z": unsupported type`},
		{"dotdot", []entry{reg("../x", 0o644, nil)}, `"../x"`},
		{"absolute", []entry{reg("/x", 0o644, nil)}, `"/x"`},
		{"long name", []entry{reg(strings.Repeat("n", 256), 0o644, nil)}, "256 bytes"},
		{"short content", []entry{{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "f", Size: 10}, data: []byte("abc")}}, `"f": read tail: unexpected EOF`},
		{"short block", []entry{{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: "f", Size: 200 << 10}, data: []byte("abc")}}, `"f": read block 0: unexpected EOF`},
		{"xattr prefix", []entry{withXattrs(reg("f", 0o644, nil), "system.posix_acl_access", "x")}, `"f": xattr "system.posix_acl_access"`},
		{"device", []entry{{hdr: &tar.Header{Typeflag: tar.TypeChar, Name: "c", Devmajor: 4096}}}, `"c": device 4096:0`},
		{"symlink", []entry{{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: "s"}}}, `"s": symlink target of 0 bytes`},
		{"uid", []entry{{hdr: &tar.Header{Typeflag: tar.TypeFifo, Name: "p", Uid: -1}}}, `"p": uid/gid -1/0`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := buildTo(t.TempDir()+"/img", c.es, sqfs.Options{})
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want one containing %s", err, c.msg)
			}
		})
	}
}

// A directory whose members' inodes lie far apart: hardlinks to the first
// of 40,000 files from a later directory, so directory headers must split
// on the inode block and the ±32767 inode number delta.
func TestFarHardlinks(t *testing.T) {
	need(t, "unsquashfs")
	es := []entry{dir("a", 0o755)}
	for i := range 40000 {
		es = append(es, reg(fmt.Sprintf("a/f%05d", i), 0o644, nil))
	}
	es = append(es, dir("b", 0o755),
		reg("b/a-first", 0o644, []byte("x")),
		entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "b/h0", Linkname: "a/f00000"}},
		entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "b/h1", Linkname: "a/f39999"}},
		reg("b/z-last", 0o644, []byte("y")),
		entry{hdr: &tar.Header{Typeflag: tar.TypeLink, Name: "b/zz", Linkname: "a/f20000"}})
	img, _ := build(t, es, sqfs.Options{ModTime: epoch})
	ws := model(es, epoch)
	checkListing(t, img, ws)
	if isRoot {
		checkTree(t, mountKernel(t, img), ws, treeCheck{nlink: true, symlinkTime: true})
	}
}
