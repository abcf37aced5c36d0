package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
)

// UnprivSetup gives the user a range of SubIDCount subordinate uids and
// gids (when it has none), never overlapping an existing range or the
// user's own id, and makes store (when not empty) a folder the user owns.
// It must run as root and is idempotent.
func UnprivSetup(username, store string, log io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("unpriv-setup changes /etc/subuid and /etc/subgid: run it as root (sudo strata unpriv-setup --user NAME)")
	}
	u, err := user.Lookup(username)
	if err != nil {
		return fmt.Errorf("user %q: %w", username, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	for _, f := range []struct {
		path string
		own  uint64
	}{{"/etc/subuid", uid}, {"/etc/subgid", gid}} {
		if err := addRange(f.path, u, f.own, log); err != nil {
			return err
		}
	}
	if store == "" {
		return nil
	}
	abs, err := filepath.Abs(store)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err == nil {
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil && uint64(st.Uid) == uid {
			fmt.Fprintf(log, "store %s already belongs to %s\n", abs, username)
			return nil
		}
		// A store another user (root) built holds layers with real
		// owners and trusted.* overlay xattrs: handing it over would
		// give the user files it cannot use or remove.
		if entries, _ := os.ReadDir(abs); len(entries) > 0 {
			return fmt.Errorf("store %s holds builds of another user: remove it (strata clean --store %s) or choose another --store", abs, store)
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return err
	}
	if err := os.Chown(abs, int(uid), int(gid)); err != nil {
		return fmt.Errorf("give %s to %s: %w", abs, username, err)
	}
	fmt.Fprintf(log, "store %s belongs to %s\n", abs, username)
	return nil
}

func addRange(path string, u *user.User, own uint64, log io.Writer) error {
	ranges, err := readSubIDs(path)
	if err != nil {
		return err
	}
	if r, ok := rangeFor(ranges, u); ok {
		if own < uint64(r.Start) || own >= r.End() {
			fmt.Fprintf(log, "%s: %s already has %d-%d\n", path, u.Username, r.Start, r.End()-1)
			return nil
		}
		return fmt.Errorf("%s: the range %d-%d of %s contains the user's own id %d; remove that line and run unpriv-setup again", path, r.Start, r.End()-1, u.Username, own)
	}
	start := freeStart(ranges, own)
	line := fmt.Sprintf("%s:%d:%d\n", u.Username, start, SubIDCount)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(log, "%s: added %s", path, line)
	return nil
}

// freeStart finds the lowest start at or above 100000, aligned to
// SubIDCount as shadow's useradd does, whose range overlaps no existing
// range and does not contain own.
func freeStart(ranges []subIDRange, own uint64) uint64 {
	sort.Slice(ranges, func(a, b int) bool { return ranges[a].Start < ranges[b].Start })
	for start := uint64(100000); ; start += SubIDCount {
		end := start + SubIDCount
		ok := own < start || own >= end
		for _, r := range ranges {
			if start < r.End() && uint64(r.Start) < end {
				ok = false
			}
		}
		if ok {
			return start
		}
	}
}
