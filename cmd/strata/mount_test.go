package main_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// treeOf describes every entry below root: type, mode, owner, content
// hash or link target (not times: squashfs and erofs layers carry one
// time for all their files).
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s missing", what, p)
		} else if g != w {
			t.Errorf("%s: %s is %q, want %q", what, p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s should not be there", what, p)
		}
	}
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// TestMount mounts three-image chains with deletions (an erofs and a
// squashfs encoding of the same chain, in the kernel and through FUSE,
// and a squashfs image over a tar base) and compares each tree with what
// strata grab copies out of the same image.
func TestMount(t *testing.T) {
	b := newBuild(t, "testdata/storage/types")
	b.must(nil, "build")
	want := map[string]map[string]string{}
	for _, name := range []string{"ero", "sq"} {
		g := filepath.Join(t.TempDir(), "grab")
		b.must(nil, "grab", "--keep-special", name+":/", g)
		want[name] = treeOf(t, g)
	}
	if _, ok := want["ero"]["bin/ls"]; ok {
		t.Fatal("grab shows bin/ls, which ero removed")
	}
	for _, c := range []struct {
		name string
		args []string
		tree string
	}{
		{"ero", nil, "ero"},
		{"ero", []string{"--layer-type", "squashfs"}, "ero"},
		{"ero", []string{"--fuse"}, "ero"},
		{"ero-squashfs", []string{"--fuse"}, "ero"},
		{"sq", nil, "sq"},
	} {
		t.Run(c.name+strings.Join(c.args, ""), func(t *testing.T) {
			dir := t.TempDir()
			out := b.must(nil, append([]string{"mount", "--store", b.store, "--layout", b.layout, c.name, dir}, c.args...)...)
			if !mounted(t, dir) {
				t.Fatalf("nothing mounted on %s:\n%s", dir, out)
			}
			sameTree(t, "mount "+c.name, treeOf(t, dir), want[c.tree])
			if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err == nil {
				t.Error("the mount is writable")
			}
			if _, code := b.run(nil, "mount", "--store", b.store, "--layout", b.layout, c.name, dir); code == 0 {
				t.Error("a second mount on the same folder succeeded")
			}
			b.must(nil, "umount", "--store", b.store, dir)
			if mounted(t, dir) {
				t.Fatalf("%s still mounted after umount", dir)
			}
		})
	}
	// both is tagged tar+gzip first: mount finds its squashfs encoding.
	// While it is mounted, clean refuses to remove the store under it.
	bothDir := t.TempDir()
	if out := b.must(nil, "mount", "--store", b.store, "--layout", b.layout, "both", bothDir); !strings.Contains(out, "both-squashfs mounted") {
		t.Errorf("mount both did not take both-squashfs:\n%s", out)
	}
	if out, code := b.run(nil, "clean"); code == 0 || !strings.Contains(out, "strata umount them first") || !strings.Contains(out, bothDir) {
		t.Errorf("clean with a mount: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(b.store); err != nil {
		t.Fatalf("clean removed the store under a mount: %v", err)
	}
	b.must(nil, "umount", "--store", b.store, bothDir)
	if out, code := b.run(nil, "mount", "--store", b.store, "--layout", b.layout, "noop", t.TempDir()); code == 0 || !strings.Contains(out, "no squashfs or erofs encoding") {
		t.Errorf("mount of a tar-only image: exit %d\n%s", code, out)
	}
	if out, code := b.run(nil, "umount", "--store", b.store, t.TempDir()); code == 0 || !strings.Contains(out, "not a strata mount") {
		t.Errorf("umount of a plain folder: exit %d\n%s", code, out)
	}

	// A squashfs image on a tar base: the base's layers are mounted as
	// their folders unpacked in the store.
	on := newBuild(t, "testdata/storage/onbase")
	on.store = b.store
	env := []string{"STRATA_TEST_BASE_LAYOUT=" + b.layout, "STRATA_TEST_BASE_TAG=both"}
	on.must(env, "build", "onsq")
	g := filepath.Join(t.TempDir(), "grab")
	on.must(env, "grab", "--keep-special", "onsq:/", g)
	dir := t.TempDir()
	on.must(env, "mount", "--store", on.store, "--layout", on.layout, "onsq", dir)
	sameTree(t, "mount onsq", treeOf(t, dir), treeOf(t, g))
	on.must(env, "umount", "--store", on.store, dir)
}
