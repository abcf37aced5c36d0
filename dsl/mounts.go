package dsl

import (
	"path"
	"slices"
	"strings"
)

// Bind is a host folder or file mounted into the image's steps.
type Bind struct {
	Source   string // absolute host path
	Dest     string // absolute path in the image
	ReadOnly bool
	// ContentKey puts the bind's content into the image's cache key
	// instead of rebuilding the image at every build (see ContentKey).
	ContentKey bool
	// KeyPaths, with ContentKey, are the paths (relative to Source) whose
	// content stands for the whole bind's; empty means all of it.
	KeyPaths []string
	Pos      Pos

	rawSource string // as written, for placeholders
}

// BindOption changes a Bind.
type BindOption func(*Bind)

// ReadOnly makes a bind read-only.
func ReadOnly() BindOption { return func(b *Bind) { b.ReadOnly = true } }

// ContentKey hashes a read-only bind's content into the image's cache key
// when the definition is evaluated, so the image is cached like one that
// imported that content, instead of being rebuilt at every build; a change
// of the content rebuilds it. The bind must also be ReadOnly: a step that
// could write to it would change what the key says it read. Unlike an
// import, the whole folder counts, .git included: the steps see it all.
//
// Hashing a large bind (a compiler toolchain: hundreds of MB) at every
// build is slow. Given paths (relative to the bind's source, files or
// folders), only those are hashed, standing for the whole bind: the
// VERSION file of a Go toolchain, say, which every release changes. A
// change elsewhere in the bind then keeps the cache, so name paths that
// change whenever what the steps read does.
func ContentKey(paths ...string) BindOption {
	return func(b *Bind) {
		b.ContentKey = true
		b.KeyPaths = append(slices.Clip(b.KeyPaths), paths...)
	}
}

// Bind mounts the host path src (relative to the folder of the calling Go
// file) at dest during this image's steps; it is never part of the layer.
// What a step reads through a bind cannot be hashed, so an image with binds
// (and every image built on it) is rebuilt on every build, unless every
// bind is read-only and keyed by its content (ContentKey).
func (i *Image) Bind(src, dest string, opts ...BindOption) *Image {
	c := i.clone()
	// dest is checked and cleaned when the definition is evaluated, after
	// its placeholders are expanded (see expandImage).
	b := Bind{Source: resolve(c.lastEdit, src), Dest: dest, Pos: c.lastEdit, rawSource: src}
	for _, o := range opts {
		o(&b)
	}
	if b.ContentKey && !b.ReadOnly {
		c.fail("Bind %s: ContentKey needs ReadOnly too: a step that writes to the bind would change what the cache key says it read", src)
		return c
	}
	for _, p := range b.KeyPaths {
		if cp := path.Clean(p); p == "" || path.IsAbs(p) || cp == ".." || strings.HasPrefix(cp, "../") {
			c.fail("Bind %s: ContentKey path %q must be relative to the bind's source and inside it", src, p)
			return c
		}
	}
	c.binds = append(c.binds, b)
	return c
}

// CacheMount is a named persistent folder mounted during an image's steps.
type CacheMount struct {
	Name string
	Dest string
}

// CacheMount mounts the persistent cache folder name at dest during this
// image's steps: package archives, module and build caches that should
// survive between builds and be shared between images. Its content is never
// part of the image or of the cache key. Steps of different images that use
// one cache take turns (the cache is locked while a step uses it).
func (i *Image) CacheMount(name, dest string) *Image {
	c := i.clone()
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		c.fail("CacheMount: invalid cache name %q", name)
		return c
	}
	if why := destProblem(dest, false); why != "" {
		c.fail("CacheMount %s: destination %q %s", name, dest, why)
		return c
	}
	c.caches = append(c.caches, CacheMount{Name: name, Dest: path.Clean(dest)})
	return c
}

// Binds returns the image's host binds.
func (i *Image) Binds() []Bind {
	out := slices.Clone(i.binds)
	for n := range out {
		out[n].KeyPaths = slices.Clone(out[n].KeyPaths)
	}
	return out
}

// CacheMounts returns the image's cache mounts.
func (i *Image) CacheMounts() []CacheMount { return slices.Clone(i.caches) }
