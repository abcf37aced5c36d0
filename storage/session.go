package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Sessions are the workspaces of strata run. An interactive container can
// live for hours, so it must not hold the store's lock: its workspace lives
// in sessions/ instead of tmp/ (which every Open empties), marked in use by
// an flock of its own, and the store can be closed while the container
// runs. Its layers must never be replaced in place while it runs: the
// b-DIGEST layer dirs of a tagged image's blobs never are (only Destroy
// removes them, and it refuses while a session is open). The k-KEY dirs of
// build-only images are replaced by a rebuild, so strata chroot keeps the
// store locked instead.

const sessionsDir = "sessions"

// NewSession creates a workspace under sessions/ for the image name, held
// by this process until Discard (hand Workspace.Lock to the sandbox too, so
// that it stays held while the container lives even if strata is killed).
// The store may be closed afterwards.
func (s *Store) NewSession(name string) (*Workspace, error) {
	parent := filepath.Join(s.Root, sessionsDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	d, err := os.MkdirTemp(parent, name+"-")
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(d, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		if err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.RemoveAll(d)
		return nil, fmt.Errorf("create session: %w", err)
	}
	fmt.Fprintf(lock, "%d %s\n", os.Getpid(), strings.Join(os.Args, " "))
	ws := &Workspace{Dir: d, Upper: filepath.Join(d, "upper"), Work: filepath.Join(d, "work"), Rootfs: filepath.Join(d, "rootfs"), Out: filepath.Join(d, "out"), Lock: lock}
	for _, p := range []string{ws.Upper, ws.Work, ws.Rootfs, ws.Out} {
		if err := os.Mkdir(p, 0o755); err != nil {
			ws.Discard()
			return nil, fmt.Errorf("create session: %w", err)
		}
	}
	return ws, nil
}

// cleanSessions removes the sessions no process holds any more (their
// strata run was killed) and returns who holds the others. A session it
// cannot remove is reported in err and left for the next time.
func (s *Store) cleanSessions() (inUse []string, err error) {
	parent := filepath.Join(s.Root, sessionsDir)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		if holder, held := sessionHolder(dir); held {
			inUse = append(inUse, holder)
			continue
		}
		if rerr := s.removeTree(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the session of a killed strata run: %w", rerr))
		}
	}
	return inUse, err
}

// sessionHolder reports whether a live process holds the session dir, and
// which.
func sessionHolder(dir string) (string, bool) {
	f, err := os.Open(filepath.Join(dir, "lock"))
	if errors.Is(err, os.ErrNotExist) {
		// Killed before it took its lock (the lock file is removed
		// last, see Workspace.Discard).
		return "", false
	}
	if err != nil {
		return "unknown (" + err.Error() + ")", true
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return "", false
	}
	b, _ := io.ReadAll(f)
	pid, cmd, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return fmt.Sprintf("pid %s (%s)", pid, cmd), true
}
