package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime/sandbox"
	"golang.org/x/sys/unix"
)

// CacheDir is the folder of the cache mount name in the store at
// storeRoot. It lives in the store, so that `strata clean` removes it
// and two builds never share one without sharing the store lock.
func CacheDir(storeRoot, name string) string {
	return filepath.Join(storeRoot, "caches", name)
}

// cacheMounts prepares n's cache mounts: it creates their folders, takes
// an exclusive lock on each and returns the binds for the sandbox.
//
// Why a lock and not a copy per step: the caches strata is for (apt
// archives, Go module and build caches) are large, and a copy per step
// would cost what the cache saves. The price is that images using the same
// cache run their steps in turn, not at the same time; images using other
// caches, or none, are not held back. The locks are flock(2) on
// caches/NAME.lock, one open file per image, so they exclude images of one
// build (flock locks belong to an open file, not to a process) as well as
// any other process using the store. They are taken in name order, so two
// images that need the same two caches cannot deadlock.
//
// release must be called once the steps are over, however they ended.
func (b *builder) cacheMounts(ctx context.Context, n *dsl.Node) (binds []sandbox.Bind, release func(), err error) {
	mounts := n.Image.CacheMounts()
	if len(mounts) == 0 {
		return nil, func() {}, nil
	}
	var locks []*os.File
	release = func() {
		for _, f := range locks {
			f.Close() // closing the file drops its flock
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	names := make([]string, 0, len(mounts))
	for _, m := range mounts {
		if !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		dir := CacheDir(b.opts.Store.Root, name)
		// The cache itself stays 0755 for the steps; the store's caches/
		// folder above it is private.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("image %q: cache mount %s: %w", n.Name, name, err)
		}
		f, err := lockCache(ctx, dir+".lock", func() {
			b.con.printf("%s: waiting for cache mount %s, which another image is using\n", n.Name, name)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("image %q: cache mount %s: %w", n.Name, name, err)
		}
		locks = append(locks, f)
	}
	for _, m := range mounts {
		binds = append(binds, sandbox.Bind{Source: CacheDir(b.opts.Store.Root, m.Name), Dest: m.Dest})
	}
	return binds, release, nil
}

// lockCache takes an exclusive flock on path, calling waiting once when it
// has to wait. It polls rather than blocking in flock(2) so that a
// cancelled build stops waiting at once.
func lockCache(ctx context.Context, path string, waiting func()) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for first := true; ; first = false {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if first {
			waiting()
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}
