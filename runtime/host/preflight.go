package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// A build's checks cost tens of milliseconds (the overlay check starts a
// sandbox), which is most of a fully cached build. What they find depends
// on little: the kernel and this boot, the user, the subordinate ids and
// setuid tools of a rootless build, mksquashfs when squashfs is wanted,
// the store's path and this strata binary. Preflight remembers the sets
// of those that passed, in the user's cache folder, and then runs only
// the checks that can change any moment (the store folder's writability
// and the free space).

// passedFile holds the keys of the check runs that passed, newest last.
func passedFile() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "strata", "preflight-passed"), nil
}

// keepPassed is how many passed keys are remembered: one per store and
// user the machine builds with, within reason.
const keepPassed = 16

// preflightKey is the digest of what the checks of o depend on, or ""
// when part of it cannot be read (the checks then run).
func preflightKey(o CheckOptions) string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "kernel %s\nboot %s\neuid %d\nrootless %t\nsquashfs %t\nerofs %t\n",
		unix.ByteSliceToString(u.Release[:]), bytes.TrimSpace(boot), os.Geteuid(), rootless(o), o.Squashfs, o.Erofs)
	store, err := filepath.Abs(o.Store)
	if err != nil {
		return ""
	}
	fmt.Fprintf(h, "store %s\n", store)
	files := []string{exe}
	if rootless(o) {
		files = append(files, "/etc/subuid", "/etc/subgid")
		for _, tool := range []string{"newuidmap", "newgidmap"} {
			p, err := exec.LookPath(tool)
			if err != nil {
				return ""
			}
			files = append(files, p)
		}
	}
	for _, tool := range []struct {
		name   string
		needed bool
	}{{"mksquashfs", o.Squashfs}, {"mkfs.erofs", o.Erofs}} {
		if !tool.needed {
			continue
		}
		p, err := exec.LookPath(tool.name)
		if err != nil {
			return ""
		}
		files = append(files, p)
	}
	for _, f := range files {
		// A changed file (a new strata, an edited /etc/subuid, a tool
		// reinstalled or chmodded) has another inode, size, mode or
		// change time.
		var st unix.Stat_t
		if unix.Stat(f, &st) != nil {
			return ""
		}
		fmt.Fprintf(h, "file %s %d %d %o %d.%d\n", f, st.Ino, st.Size, st.Mode, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// passedBefore reports whether the checks of key passed before.
func passedBefore(key string) bool {
	if key == "" {
		return false
	}
	path, err := passedFile()
	if err != nil {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && slices.Contains(strings.Fields(string(b)), key)
}

// rememberPassed adds key to the passed keys; failing to is no error: the
// next build runs its checks again.
func rememberPassed(key string) {
	path, err := passedFile()
	if key == "" || err != nil || os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	var keys []string
	if b, err := os.ReadFile(path); err == nil {
		keys = strings.Fields(string(b))
	}
	keys = append(slices.DeleteFunc(keys, func(k string) bool { return k == key }), key)
	if len(keys) > keepPassed {
		keys = keys[len(keys)-keepPassed:]
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".preflight-")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(strings.Join(keys, "\n") + "\n")
	if cerr := tmp.Close(); err == nil && cerr == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}
