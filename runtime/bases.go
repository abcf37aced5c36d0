package runtime

import (
	"context"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/timings"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/registry"
)

// baseLoader brings the external bases of images into the store: layouts,
// registry pulls and tarballs (local or downloaded), each once per build
// however many images stand on it. It is where the runtime hands the store
// to storage's fetchers, which take the concrete store as parts of it.
type baseLoader struct {
	store *storage.Store
	// registry holds the credentials and transport of base pulls.
	registry registry.Options
	// downloads gives the options of a tarball base's download for an
	// image (progress); nil downloads quietly.
	downloads func(image, url string) fetch.DownloadOptions

	cache baseCache
	// early tracks the recompressions started by recompressEarly.
	early sync.WaitGroup
}

// recompressEarly starts the recompressions of tarball bases that the
// tags of nodes will need (see layers: a .tar.zst base under tar+gzip
// images), so that they run beside the steps rather than after the last
// one. A failure is left for the tag to meet again and report.
func (b *baseLoader) recompressEarly(ctx context.Context, nodes []*dsl.Node, tagged bool) {
	if !tagged {
		return // without a layout nothing is tagged
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		root := n.Root()
		if _, ok := root.Base.(*dsl.TarballBase); !ok || n.Image.IsBuildOnly() {
			continue
		}
		for _, t := range n.LayerTypes {
			key := root.BaseDigest.String() + " " + string(t)
			if t.FS() || seen[key] {
				continue
			}
			seen[key] = true
			b.early.Add(1)
			go func() {
				defer b.early.Done()
				if base, err := b.load(ctx, root); err == nil && base != nil {
					_, _ = b.layers(ctx, root, base, t)
				}
			}()
		}
	}
}

// load returns the external base of a chain root; nil for scratch.
func (b *baseLoader) load(ctx context.Context, root *dsl.Node) (*storage.BaseImage, error) {
	lb, ok := root.Base.(*dsl.LayoutBase)
	if !ok {
		return b.remote(ctx, root) // scratch, registry and tarball bases
	}
	img, err := b.cache.load(ctx, "layout:"+root.BaseDigest.String(), func() (*storage.BaseImage, error) {
		img, err := b.store.ImportLayout(ctx, lb.Path, lb.Tag)
		if err != nil {
			return nil, err
		}
		if img.Descriptor.Digest != root.BaseDigest {
			return nil, fmt.Errorf("%s:%s changed during the build (was %s, now %s)", lb.Path, lb.Tag, root.BaseDigest, img.Descriptor.Digest)
		}
		return img, nil
	})
	if err != nil {
		return nil, fmt.Errorf("image %q: base: %w", root.Name, err)
	}
	return img, nil
}

// remote loads the external base of a chain root that is not a
// layout: nil for scratch, the pulled image of a *dsl.PullBase, the
// one-layer image of a *dsl.TarballBase. Its blobs land in the store by
// digest, so the next build finds them there without a request.
func (b *baseLoader) remote(ctx context.Context, root *dsl.Node) (*storage.BaseImage, error) {
	switch root.Base.(type) {
	case *dsl.PullBase, *dsl.TarballBase:
	default:
		return nil, nil
	}
	key := fmt.Sprintf("%T:%s", root.Base, root.BaseDigest)
	img, err := b.cache.load(ctx, key, func() (*storage.BaseImage, error) {
		switch base := root.Base.(type) {
		case *dsl.PullBase:
			return fetch.Pull(ctx, b.store, base.Ref, root.BaseDigest, pullOptions(b.registry, base))
		default:
			return b.tarball(ctx, root.Name, base.(*dsl.TarballBase), root.BaseDigest)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("image %q: base: %w", root.Name, err)
	}
	return img, nil
}

// tarball loads the tarball base of image name (the chain root),
// downloading it first when it is a URL.
func (b *baseLoader) tarball(ctx context.Context, name string, base *dsl.TarballBase, d digest.Digest) (*storage.BaseImage, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	source := base.Path
	if base.URL != "" {
		source = base.URL
		if _, err := fetch.Download(ctx, b.store, base.URL, d.Encoded(), b.downloadsFor(name, base.URL)); err != nil {
			return nil, err
		}
	} else {
		done := timings.Phase("base: copy " + base.Path + " into the store")
		err := fetch.IngestFile(ctx, b.store, base.Path, d)
		done()
		if err != nil {
			return nil, fmt.Errorf("tarball %s: %w", base.Path, err)
		}
	}
	defer timings.Phase("base: scan " + source)()
	return fetch.TarballImage(ctx, b.store, source, d)
}

// downloadsFor are the options of the download of url for image name.
func (b *baseLoader) downloadsFor(name, url string) fetch.DownloadOptions {
	if b.downloads == nil {
		return fetch.DownloadOptions{}
	}
	return b.downloads(name, url)
}

// layers are the layers of n's external base in an image of layer
// type t. A rootfs tarball is strata's to encode, so it follows the
// build's tar type (a .tar.zst base under gzip layers would make an image
// that older runtimes cannot read). The layers of registry and layout
// bases stay as published: recompressing them would change digests that
// signatures, provenance and cross-repository mounts refer to. Squashfs and erofs
// images keep their bases' tar layers, as before.
func (b *baseLoader) layers(ctx context.Context, root *dsl.Node, base *storage.BaseImage, t layertype.Type) ([]v1.Descriptor, error) {
	if _, ok := root.Base.(*dsl.TarballBase); !ok || t.FS() {
		return base.Manifest.Layers, nil
	}
	out := make([]v1.Descriptor, len(base.Manifest.Layers))
	for i, l := range base.Manifest.Layers {
		d, err := fetch.TarballLayer(ctx, b.store, l.Digest, t)
		if err != nil {
			return nil, fmt.Errorf("base tarball as %s: %w", t, err)
		}
		out[i] = d
	}
	return out, nil
}

// baseCache loads each base once per key: images on the same base wait
// for the first one's pull, while images on other bases pull theirs at
// the same time. A failure is remembered too, so every image on a base
// that failed gets the same error, which therefore names no image.
type baseCache struct {
	group singleflight.Group
	// loading counts the callers whose load is under way: a load whose
	// callers all left (cancelled) still runs to its end, and Build waits
	// for it before it returns and the store closes.
	loading sync.WaitGroup
	mu      sync.Mutex
	done    map[string]baseResult
}

type baseResult struct {
	img *storage.BaseImage
	err error
}

func (c *baseCache) load(ctx context.Context, key string, load func() (*storage.BaseImage, error)) (*storage.BaseImage, error) {
	if r, ok := c.lookup(key); ok {
		return r.img, r.err
	}
	c.loading.Add(1)
	ch := c.group.DoChan(key, func() (any, error) {
		if r, ok := c.lookup(key); ok {
			return r, nil // finished between the lookup and DoChan
		}
		img, err := load()
		r := baseResult{img, err}
		c.mu.Lock()
		if c.done == nil {
			c.done = map[string]baseResult{}
		}
		c.done[key] = r
		c.mu.Unlock()
		return r, nil
	})
	select {
	case v := <-ch:
		c.loading.Done()
		r := v.Val.(baseResult)
		return r.img, r.err
	case <-ctx.Done():
		go func() {
			<-ch
			c.loading.Done()
		}()
		// ctx.Err, like every step cancelled by --fail-fast or an
		// interrupt, so that the image counts as skipped.
		return nil, ctx.Err()
	}
}

func (c *baseCache) lookup(key string) (baseResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.done[key]
	return r, ok
}

// wait returns when no load is under way.
func (c *baseCache) wait() { c.loading.Wait() }
