// Package digestcache keeps, between builds, the sha256 of files that
// evaluation would otherwise read whole at every build (tarball bases),
// by what a stat of each says: device, inode, size, modification and
// change time. The change time is what makes this sound: a program can
// set a file's modification time back, but any write moves its change
// time, which only the kernel sets.
//
// Only files on local file systems whose times the kernel keeps are
// remembered (ext4, xfs, btrfs, tmpfs, ...): on NFS, FUSE or SMB a server
// or daemon sets the change time, with its own clock.
//
// It is dsl.FileDigests for strata.Evaluate. The file is a cache: a
// missing, unreadable or malformed one is an empty cache, and one that
// cannot be written only costs the next build a read.
package digestcache

import (
	"cmp"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// keep bounds the entries the file holds: the most recently used.
const keep = 256

// racy is how recent a change may be for a file's digest not to be kept.
// Timestamps come from a clock that ticks every few milliseconds, so a
// file written twice within one tick, once before and once after it was
// read, would show the same times with other content; a file that has not
// changed for this long is past that.
const racy = 2 * time.Second

type entry struct {
	Dev    uint64        `json:"dev"`
	Ino    uint64        `json:"ino"`
	Size   int64         `json:"size"`
	Mtime  int64         `json:"mtime"` // nanoseconds since the epoch
	Ctime  int64         `json:"ctime"`
	Digest digest.Digest `json:"digest"`
	// Used is when the entry was last used, in Unix seconds, rewritten
	// at most daily so that a cached build writes nothing.
	Used int64 `json:"used"`
}

// Cache is the digests of one file, safe for concurrent use.
type Cache struct {
	path    string
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]entry
	changed bool
	// asked holds when Digest missed for a path: the stat it was given
	// was taken then, and the racy window is measured from that moment,
	// not from the end of a long read.
	asked map[string]time.Time
}

// Default opens digests.json in strata's folder of the user's cache
// (where the compiled drivers are); for a user without one, it is a cache
// of this process only.
func Default() *Cache {
	dir, err := os.UserCacheDir()
	if err != nil {
		return Open("")
	}
	return Open(filepath.Join(dir, "strata", "digests.json"))
}

// Open reads the cache file at path ("": none, nothing is saved).
func Open(path string) *Cache {
	c := &Cache{path: path, now: time.Now, entries: map[string]entry{}, asked: map[string]time.Time{}}
	if b, err := os.ReadFile(path); path != "" && err == nil {
		if json.Unmarshal(b, &c.entries) != nil {
			c.entries = map[string]entry{}
		}
	}
	return c
}

// stat is what the cache compares of a file; ok is false for a FileInfo
// that is not the operating system's.
func stat(info fs.FileInfo) (e entry, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return entry{}, false
	}
	return entry{
		Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}, true
}

func (e entry) same(o entry) bool {
	return e.Dev == o.Dev && e.Ino == o.Ino && e.Size == o.Size && e.Mtime == o.Mtime && e.Ctime == o.Ctime
}

// Digest returns the digest remembered for path, if info still describes
// the file it was taken of.
func (c *Cache) Digest(path string, info fs.FileInfo) (digest.Digest, bool) {
	now, ok := stat(info)
	if !ok {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[path]
	if !ok || !e.same(now) || e.Digest.Validate() != nil {
		c.asked[path] = c.now()
		return "", false
	}
	if t := c.now().Unix(); t-e.Used > 24*60*60 {
		e.Used, c.changed = t, true
		c.entries[path] = e
	}
	return e.Digest, true
}

// Remember records d as the digest of the file at path that info
// describes, unless the file changed too recently to tell.
func (c *Cache) Remember(path string, info fs.FileInfo, d digest.Digest) {
	e, ok := stat(info)
	if !ok || !localTimes(path) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	statted, ok := c.asked[path]
	if !ok {
		statted = c.now()
	}
	if statted.Sub(time.Unix(0, e.Ctime)) < racy {
		return
	}
	e.Digest, e.Used = d, c.now().Unix()
	c.entries[path], c.changed = e, true
}

// localFileSystems are the statfs magic numbers of file systems whose
// inode times the local kernel keeps, at a fine granularity.
var localFileSystems = map[int64]bool{
	0xEF53:     true, // ext2, ext3, ext4
	0x58465342: true, // xfs
	0x9123683E: true, // btrfs
	0x01021994: true, // tmpfs
	0x794C7630: true, // overlayfs
	0x2FC12FC1: true, // zfs
	0xF2F52010: true, // f2fs
	0xCA451A4E: true, // bcachefs
}

func localTimes(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && localFileSystems[int64(st.Type)]
}

// Save writes the cache when it changed, atomically, keeping the most
// recently used entries.
func (c *Cache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.changed || c.path == "" {
		return nil
	}
	if len(c.entries) > keep {
		paths := make([]string, 0, len(c.entries))
		for p := range c.entries {
			paths = append(paths, p)
		}
		slices.SortFunc(paths, func(a, b string) int { return cmp.Compare(c.entries[b].Used, c.entries[a].Used) })
		for _, p := range paths[keep:] {
			delete(c.entries, p)
		}
	}
	b, err := json.Marshal(c.entries)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(c.path), ".digests-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), c.path); err != nil {
		return err
	}
	c.changed = false
	return nil
}
