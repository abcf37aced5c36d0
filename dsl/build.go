package dsl

import (
	"path"
	"slices"
	"strings"
)

// LayerType is an encoding of an image's layer.
type LayerType string

// The layer types strata writes.
const (
	// TarGzip is the OCI tar+gzip layer every tool reads; the default.
	TarGzip LayerType = "tar+gzip"
	// TarZstd is a tar+zstd layer: faster to write and smaller.
	TarZstd LayerType = "tar+zstd"
	// Squashfs is a squashfs layer as stacker writes it, tagged NAME-squashfs.
	Squashfs LayerType = "squashfs"
)

// LayerTypes sets the encodings of this image's layer, overriding the
// build's --layer-type. The first is tagged with the plain name, squashfs
// as NAME-squashfs, tar+zstd (when not first) as NAME-zstd. All come from
// one run of the steps.
func (i *Image) LayerTypes(types ...LayerType) *Image {
	c := i.clone()
	for _, t := range types {
		switch t {
		case TarGzip, TarZstd, Squashfs:
		default:
			c.fail("LayerTypes: unknown layer type %q (use dsl.TarGzip, dsl.TarZstd or dsl.Squashfs)", t)
			return c
		}
	}
	c.types = slices.Clone(types)
	return c
}

// Bind is a host folder or file mounted into the image's steps.
type Bind struct {
	Source   string // absolute host path
	Dest     string // absolute path in the image
	ReadOnly bool
	Pos      Pos

	rawSource string // as written, for placeholders
}

// BindOption changes a Bind.
type BindOption func(*Bind)

// ReadOnly makes a bind read-only.
func ReadOnly() BindOption { return func(b *Bind) { b.ReadOnly = true } }

// Bind mounts the host path src (relative to the folder of the calling Go
// file) at dest during this image's steps; it is never part of the layer.
// What a step reads through a bind cannot be hashed, so an image with binds
// (and every image built on it) is rebuilt on every build.
func (i *Image) Bind(src, dest string, opts ...BindOption) *Image {
	c := i.clone()
	// dest is checked and cleaned when the definition is evaluated, after
	// its placeholders are expanded (see expandImage).
	b := Bind{Source: resolve(c.lastEdit, src), Dest: dest, Pos: c.lastEdit, rawSource: src}
	for _, o := range opts {
		o(&b)
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
	if !path.IsAbs(dest) || path.Clean(dest) == "/" {
		c.fail("CacheMount %s: destination %q must be an absolute path other than /", name, dest)
		return c
	}
	c.caches = append(c.caches, CacheMount{Name: name, Dest: path.Clean(dest)})
	return c
}

// SecretSource says where a secret's value comes from at build time.
type SecretSource struct {
	// File is a host file (absolute), or Env an environment variable of
	// the strata process.
	File, Env string
}

// SecretFile reads a secret from a host file, relative to the folder of the
// calling Go file.
func SecretFile(path string) SecretSource { return SecretSource{File: resolve(caller(), path)} }

// SecretEnv reads a secret from an environment variable of the strata
// process.
func SecretEnv(name string) SecretSource { return SecretSource{Env: name} }

// Secret is a value the image's steps read during the build.
type Secret struct {
	Name   string
	Source SecretSource
	Pos    Pos
}

// SecretDir is where steps find secrets: SecretDir/NAME.
const SecretDir = "/run/secrets"

// Secret makes a secret readable by this image's steps at
// /run/secrets/NAME. Its value is never written to a layer, the config, a
// log, a cache record or the cache key; a secret whose source is missing
// fails the build before any step runs.
func (i *Image) Secret(name string, src SecretSource) *Image {
	c := i.clone()
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		c.fail("Secret: invalid secret name %q", name)
		return c
	}
	if src.File == "" && src.Env == "" {
		c.fail("Secret %s: give dsl.SecretFile(path) or dsl.SecretEnv(name)", name)
		return c
	}
	c.secrets = append(c.secrets, Secret{Name: name, Source: src, Pos: c.lastEdit})
	return c
}

// Tag adds tags under which strata publish pushes the image (default:
// "latest").
func (i *Image) Tag(tags ...string) *Image {
	c := i.clone()
	c.tags = append(c.tags, tags...)
	return c
}

// Binds returns the image's host binds.
func (i *Image) Binds() []Bind { return slices.Clone(i.binds) }

// CacheMounts returns the image's cache mounts.
func (i *Image) CacheMounts() []CacheMount { return slices.Clone(i.caches) }

// Secrets returns the image's secrets.
func (i *Image) Secrets() []Secret { return slices.Clone(i.secrets) }

// Tags returns the tags set with Tag.
func (i *Image) Tags() []string { return slices.Clone(i.tags) }

// OwnLayerTypes returns the layer types set with LayerTypes, or nil.
func (i *Image) OwnLayerTypes() []LayerType { return slices.Clone(i.types) }
