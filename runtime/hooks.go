package runtime

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/storage/regcache"
)

// hooks holds what a build keeps for the registry caches, the per-image
// logs and the live display, apart from the scheduler's own state.
type hooks struct {
	mu       sync.Mutex
	logs     map[string]*os.File
	unusable map[*regcache.Cache]bool
	logWarn  sync.Once
	// pushes tracks uploads to CacheTo, which run beside the build so an
	// image's dependents need not wait for its upload.
	pushes  sync.WaitGroup
	pushSem chan struct{}
}

func newHooks(opts Options, nodes []*dsl.Node) *hooks {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	opts.Progress.Images(names...)
	return &hooks{logs: map[string]*os.File{}, unusable: map[*regcache.Cache]bool{}, pushSem: make(chan struct{}, 3)}
}

// fromRegistry asks the CacheFrom registries, in order, for n's record
// when the store has none, and commits the first found into the store: the
// store lookup that follows then finds n cached, as if it had been built
// here. A cache that fails is reported as a warning and the build goes on
// to run the steps; one that cannot be reached is not asked again.
func (b *builder) fromRegistry(ctx context.Context, n *dsl.Node) {
	if len(b.opts.CacheFrom) == 0 || n.Volatile || b.opts.NoCache {
		return
	}
	if rec, _, err := b.store.Lookup(n.Key); err != nil || rec != nil {
		return
	}
	for _, c := range b.opts.CacheFrom {
		if b.hooks.isUnusable(c) {
			continue
		}
		b.opts.Progress.State(n.Name, "pulling")
		rec, err := c.Fetch(ctx, b.opts.Store, n.Key, regcache.FetchOptions{
			Image:     n.Name,
			KeyInputs: n.KeyInputs,
			Unpack:    unpackOptions(b.uids != nil),
			Received:  b.opts.Progress.Pulled(n.Name),
		})
		switch {
		case err == nil:
			var size int64
			for _, l := range rec.Layers {
				size += l.Descriptor.Size
			}
			b.con.printf("%s: pulled from registry cache %s (%s)\n", n.Name, c, bytesize.Format(size))
			return
		case errors.Is(err, regcache.ErrMiss):
		case ctx.Err() != nil:
			return
		case regcache.Unreachable(err):
			if b.hooks.markUnusable(c) {
				b.con.printf("warning: registry cache %s is not usable, building without it: %v\n", c, err)
			}
		default:
			b.con.printf("warning: %s: registry cache %s has an unusable entry, running the steps instead: %v\n", n.Name, c, err)
		}
	}
	b.opts.Progress.State(n.Name, "waiting")
}

func (h *hooks) isUnusable(c *regcache.Cache) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unusable[c]
}

// markUnusable reports whether c was usable until now, so that only the
// first failure is reported.
func (h *hooks) markUnusable(c *regcache.Cache) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := !h.unusable[c]
	h.unusable[c] = true
	return was
}

// finished runs when n's build ends, however it ended: the display shows
// the outcome, the log gets its last line, and a built or cached image is
// uploaded to CacheTo in the background.
func (b *builder) finished(ctx context.Context, n *dsl.Node, res *Result) {
	b.opts.Progress.State(n.Name, string(res.Status))
	b.hooks.closeLog(res)
	c := b.opts.CacheTo
	if c == nil || n.Volatile || res.Record == nil || (res.Status != Built && res.Status != Cached) || b.hooks.isUnusable(c) {
		return
	}
	rec := res.Record
	b.hooks.pushes.Add(1)
	go func() {
		defer b.hooks.pushes.Done()
		select {
		case b.hooks.pushSem <- struct{}{}:
			defer func() { <-b.hooks.pushSem }()
		case <-ctx.Done():
			return
		}
		if b.hooks.isUnusable(c) {
			return
		}
		sent := b.opts.Progress.Pushed(n.Name)
		if sent == nil {
			sent = new(atomic.Int64)
		}
		pushed, err := c.Push(ctx, b.opts.Store, rec, sent)
		switch {
		case err == nil && pushed:
			b.con.printf("%s: pushed to registry cache %s (%s uploaded)\n", n.Name, c, bytesize.Format(sent.Load()))
		case err == nil, ctx.Err() != nil:
		case regcache.Unreachable(err):
			if b.hooks.markUnusable(c) {
				b.con.printf("warning: registry cache %s is not usable, images are not uploaded to it: %v\n", c, err)
			}
		default:
			b.con.printf("warning: %s: upload to registry cache %s failed: %v\n", n.Name, c, err)
		}
	}()
}

// wait waits for the uploads to CacheTo.
func (h *hooks) wait() { h.pushes.Wait() }

// RegistryCache are the registries a build shares its cache through.
type RegistryCache struct {
	// CacheFrom are asked, in order, for an image the store does not
	// have, before its steps run.
	CacheFrom []*regcache.Cache
	// CacheTo receives the layers and record of every image built or
	// found cached, uploaded while the build goes on.
	CacheTo *regcache.Cache
}
