package digestcache

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestRemembersUntilTheFileChanges(t *testing.T) {
	dir := t.TempDir()
	if !localTimes(dir) {
		t.Skip("the temporary folder is not on a file system whose times the kernel keeps")
	}
	file := filepath.Join(dir, "base.tar")
	if err := os.WriteFile(file, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "digests.json")
	c := Open(path)
	later := func() time.Time { return time.Now().Add(time.Hour) }
	c.now = later
	info := func() os.FileInfo {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	d := digest.FromString("one")
	c.Remember(file, info(), d)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}

	c = Open(path)
	c.now = later
	if got, ok := c.Digest(file, info()); !ok || got != d {
		t.Fatalf("after a save and an open, Digest = %s, %v; want %s", got, ok, d)
	}
	// Same size, and the modification time set back as it was: only the
	// change time tells. On a kernel with coarse timestamps (a tick of a
	// few ms) the rewrite waits for the next tick, as a real edit would
	// land after it.
	before := info()
	for deadline := time.Now().Add(time.Second); ; {
		if err := os.WriteFile(file, []byte("two"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, before.ModTime(), before.ModTime()); err != nil {
			t.Fatal(err)
		}
		if info().Sys().(*syscall.Stat_t).Ctim != before.Sys().(*syscall.Stat_t).Ctim {
			break
		}
		if time.Now().After(deadline) {
			t.Skip("the change time did not move within a second")
		}
		time.Sleep(time.Millisecond)
	}
	if got, ok := c.Digest(file, info()); ok {
		t.Errorf("a rewritten file kept its digest %s", got)
	}
}

// freshFile writes a file holding "one" and returns its path and stat.
func freshFile(t *testing.T) (string, os.FileInfo) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "base.tar")
	if err := os.WriteFile(file, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, fi
}

func TestDoesNotRememberWhatChangedJustNow(t *testing.T) {
	file, fi := freshFile(t)
	c := Open("")
	c.Remember(file, fi, digest.FromString("one"))
	if _, ok := c.Digest(file, fi); ok {
		t.Error("a file written a moment ago was remembered: a second write within the clock's tick would go unseen")
	}
}

// The racy window is measured from when the file was statted (when
// Digest missed), not from when a long read ended.
func TestRacyWindowStartsAtTheStat(t *testing.T) {
	file, fi := freshFile(t)
	c := Open("")
	c.now = func() time.Time { return fi.ModTime().Add(time.Second) }
	if _, ok := c.Digest(file, fi); ok {
		t.Fatal("an empty cache knew the file")
	}
	c.now = func() time.Time { return fi.ModTime().Add(time.Hour) } // a long read
	c.Remember(file, fi, digest.FromString("one"))
	if _, ok := c.Digest(file, fi); ok {
		t.Error("a file statted a second after it changed was remembered")
	}
}

func TestUnusableInputsAreMisses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "digests.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Open(path)
	if len(c.entries) != 0 {
		t.Errorf("a malformed file gave entries: %v", c.entries)
	}
	// A FileInfo that is not the operating system's has no inode or
	// change time to compare.
	mem := fstest.MapFS{"f": {Data: []byte("x")}}
	fi, err := mem.Stat("f")
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return time.Now().Add(time.Hour) }
	c.Remember("/f", fi, digest.FromString("x"))
	if _, ok := c.Digest("/f", fi); ok {
		t.Error("an in-memory file's digest was remembered")
	}
}

func TestKeepsTheMostRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	c := Open(filepath.Join(dir, "digests.json"))
	for i := range keep + 10 {
		c.entries[filepath.Join(dir, string(rune('a'+i%26))+string(rune('0'+i)))] = entry{Used: int64(i), Digest: digest.FromString("x")}
	}
	c.changed = true
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c = Open(c.path)
	if len(c.entries) != keep {
		t.Fatalf("%d entries kept, want %d", len(c.entries), keep)
	}
	for _, e := range c.entries {
		if e.Used < 10 {
			t.Fatalf("kept an entry last used at %d, one of the 10 oldest", e.Used)
		}
	}
}
