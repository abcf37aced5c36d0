package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/umoci/oci/cas"
	"github.com/opencontainers/umoci/oci/cas/dir"
	"github.com/opencontainers/umoci/oci/casext"
	"github.com/strata-build/strata/internal/flight"
	"github.com/strata-build/strata/internal/ignore"
	"golang.org/x/sys/unix"
)

// Store is an open, locked store folder. Only one Store per folder exists
// at a time across all processes; Close releases it.
type Store struct {
	Root string
	lock *os.File
	cas  casext.Engine
	// unpacks runs one unpack per layer digest at a time (see Unpacked).
	unpacks flight.Group[string]
	rm      func(string) error // see OpenOptions.RemoveAll

	// records remembers the records this handle read or wrote. The store's
	// lock keeps every other process out while the handle is open, so a
	// record changes only through it; a build looks each one up several
	// times (to decide, then for every manifest on it).
	recMu   sync.Mutex
	records map[digest.Digest]*Record
}

// OpenOptions tune Open.
type OpenOptions struct {
	// NoWait makes Open fail at once when another process holds the store,
	// instead of waiting for it.
	NoWait bool
	// Log receives a line saying who holds the lock while Open waits.
	Log io.Writer
	// RemoveAll removes a tree that an ordinary removal could not: in a
	// rootless store, files a step chowned to other ids sit in folders only
	// the build's user namespace may write. The runtime passes one that
	// works inside that namespace; storage itself runs no process.
	RemoveAll func(path string) error
}

// ErrLocked is returned by Open with NoWait when another process holds
// the store.
var ErrLocked = errors.New("store is locked")

// Open creates (if needed) and locks the store folder root.
func Open(ctx context.Context, root string, opts OpenOptions) (_ *Store, err error) {
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := makePrivate(root); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open store lock: %w", err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	if err := acquire(ctx, lock, root, opts); err != nil {
		return nil, err
	}
	// Who holds the lock is written after taking it so that a waiting
	// build can say which process it waits for.
	if err := lock.Truncate(0); err == nil {
		fmt.Fprintf(lock, "%d %s\n", os.Getpid(), strings.Join(os.Args, " "))
	}

	if err := tagStore(root); err != nil {
		return nil, err
	}

	casDir := blobLayout(root)
	if _, err := os.Stat(filepath.Join(casDir, "index.json")); errors.Is(err, os.ErrNotExist) {
		if err := dir.Create(casDir); err != nil {
			return nil, fmt.Errorf("create blob store: %w", err)
		}
	}
	engine, err := dir.Open(casDir)
	if err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", casDir, err)
	}
	s := &Store{Root: root, lock: lock, cas: casext.NewEngine(engine), rm: opts.RemoveAll}
	// Holding the lock means nothing else uses tmp/: whatever is there was
	// left by an interrupted build.
	if err := s.cleanTmp(); err != nil {
		s.Close()
		return nil, err
	}
	if _, err := s.cleanSessions(); err != nil && opts.Log != nil {
		// Leftovers of a killed strata run never stop the work.
		fmt.Fprintf(opts.Log, "warning: %v\n", err)
	}
	return s, nil
}

// privateDirs are the store's folders that hold unpacked image content
// (setuid binaries and device nodes of images, as built) or build output:
// only the store's owner may enter them, or any local user could run an
// image's setuid-root binary from the host.
var privateDirs = []string{"layers", "cache", "tmp", "caches", sessionsDir, "logs"}

// makePrivate creates the store's folders with mode 0700, tightening
// those of stores made by earlier versions. The root itself is tightened
// when strata made it (or it already is a store): a --store naming a
// shared folder must not change that folder's mode.
func makePrivate(root string) error {
	_, err := os.Stat(filepath.Join(root, "lock"))
	ours := err == nil
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		ours = true
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("create store %s: %w", root, err)
	}
	if ours {
		if err := os.Chmod(root, 0o700); err != nil {
			return fmt.Errorf("store %s: %w", root, err)
		}
	}
	for _, d := range privateDirs {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("create store %s: %w", root, err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("store %s: %w", root, err)
		}
	}
	return nil
}

// tagStore writes the file that marks root as a store (a cache directory
// tag), so that dsl.Dir of a folder holding the store (the module root
// holds .strata) leaves it out, and backup tools skip it.
func tagStore(root string) error {
	tag := filepath.Join(root, ignore.StoreTag)
	if _, err := os.Lstat(tag); err == nil {
		return nil
	}
	if err := os.WriteFile(tag, []byte(ignore.StoreTagText), 0o644); err != nil {
		return fmt.Errorf("store %s: %w", root, err)
	}
	return nil
}

func acquire(ctx context.Context, lock *os.File, root string, opts OpenOptions) error {
	err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("lock store %s: %w", root, err)
	}
	holder := lockHolder(root)
	if opts.NoWait {
		return fmt.Errorf("%w: %s is in use by %s", ErrLocked, root, holder)
	}
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "waiting for store %s, in use by %s\n", root, holder)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for store %s: %w", root, ctx.Err())
		case <-tick.C:
		}
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock store %s: %w", root, err)
		}
	}
}

func lockHolder(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "lock"))
	if err != nil || len(b) == 0 {
		return "another process"
	}
	line := strings.TrimSpace(string(b))
	pid, cmd, _ := strings.Cut(line, " ")
	if _, err := strconv.Atoi(pid); err != nil {
		return "another process"
	}
	return fmt.Sprintf("pid %s (%s)", pid, cmd)
}

// Close releases the store; closing it again does nothing.
func (s *Store) Close() error {
	var errs []error
	if s.cas.Engine != nil {
		errs = append(errs, s.cas.Close())
		s.cas = casext.Engine{}
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}

// CAS is the store's blob engine.
func (s *Store) CAS() cas.Engine { return s.cas }

// BlobLayout is the OCI image layout folder that holds the store's
// blobs: what a build backend reads the store's images from.
func (s *Store) BlobLayout() string { return blobLayout(s.Root) }

func blobLayout(root string) string { return filepath.Join(root, "oci") }

// BlobPath is where the blob with digest d is (or would be) stored.
// A digest that is not well formed (it may come from an untrusted
// manifest: "sha256:../../home") names a path that never exists, so that
// it can never point outside the blob store.
func (s *Store) BlobPath(d string) string {
	if digest.Digest(d).Validate() != nil {
		return filepath.Join(s.BlobLayout(), "blobs", "invalid-digest")
	}
	algo, hex, _ := strings.Cut(d, ":")
	return filepath.Join(s.BlobLayout(), "blobs", algo, hex)
}

func (s *Store) cleanTmp() error {
	tmp := filepath.Join(s.Root, "tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := s.removeTree(filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("clean leftovers of an interrupted build: %w", err)
		}
	}
	return nil
}

// removeAll is os.RemoveAll that first makes read-only folders (as a step
// may leave them) writable so their contents can go.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil {
		return nil
	}
	filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// removeTree removes path, falling back to OpenOptions.RemoveAll for what
// an ordinary removal cannot delete.
func (s *Store) removeTree(path string) error {
	err := removeAll(path)
	if err == nil || s.rm == nil {
		return err
	}
	return s.rm(path)
}

// Workspace is a fresh set of folders for one overlay: Upper and Work for
// overlayfs, Rootfs as the mount point, and Dir for anything else the build
// of one image writes (layer blobs before they are committed).
type Workspace struct {
	Dir, Upper, Work, Rootfs, Out string

	// Lock is a session's lock file (see NewSession), nil otherwise.
	Lock *os.File
}

// NewWorkspace creates a workspace under tmp/ for the image name.
func (s *Store) NewWorkspace(name string) (*Workspace, error) {
	d, err := os.MkdirTemp(filepath.Join(s.Root, "tmp"), name+"-")
	if err != nil {
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	ws := &Workspace{Dir: d, Upper: filepath.Join(d, "upper"), Work: filepath.Join(d, "work"), Rootfs: filepath.Join(d, "rootfs"), Out: filepath.Join(d, "out")}
	for _, p := range []string{ws.Upper, ws.Work, ws.Rootfs, ws.Out} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return nil, fmt.Errorf("create workspace: %w", err)
		}
	}
	return ws, nil
}

// Discard removes the workspace. A session's lock file goes last, so that
// a session half removed still reads as held by this process.
func (ws *Workspace) Discard() error {
	if ws.Lock == nil {
		return removeAll(ws.Dir)
	}
	entries, err := os.ReadDir(ws.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if e.Name() != "lock" {
			if err := removeAll(filepath.Join(ws.Dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := removeAll(ws.Dir); err != nil {
		return err
	}
	ws.Lock.Close()
	ws.Lock = nil
	return nil
}

// LayerDir is the path of the unpacked layer id.
func (s *Store) LayerDir(id string) string { return filepath.Join(s.Root, "layers", id) }

// Destroy removes the whole store folder and closes the store. It refuses
// while a strata run or chroot uses the store's layers.
func (s *Store) Destroy() error {
	inUse, _ := s.cleanSessions()
	if len(inUse) > 0 {
		s.Close()
		return fmt.Errorf("store %s is in use by %s: stop it first", s.Root, strings.Join(inUse, ", "))
	}
	err := s.removeTree(s.Root)
	return errors.Join(err, s.Close())
}
