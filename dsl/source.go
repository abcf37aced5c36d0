package dsl

import (
	"io/fs"
	"path/filepath"
)

// Base is what an image starts from: Scratch, an image in a local OCI
// layout (Layout) or another definition (*Image). The set is closed so that
// a base is always one strata knows how to build on.
type Base interface {
	isBase()
}

// Scratch returns the empty base.
func Scratch() Base { return scratchBase{} }

type scratchBase struct{}

func (scratchBase) isBase() {}

// Layout returns a base read from the OCI image layout at path, by its
// org.opencontainers.image.ref.name tag (which may contain colons). A
// relative path resolves against the folder of the Go file that calls
// Layout. The image's manifest digest is part of the cache key, so a
// changed base rebuilds everything on top of it.
func Layout(path, tag string) Base {
	pos := caller()
	return &LayoutBase{Path: resolve(pos, path), Tag: tag, pos: pos}
}

// LayoutBase is a base in a local OCI layout; see Layout.
type LayoutBase struct {
	Path string
	Tag  string
	pos  Pos
}

func (*LayoutBase) isBase() {}

// Source is something an Import copies into an image.
type Source interface {
	isSource()
	// describe is how the source appears in messages.
	describe() string
}

// File is a local file. A relative path resolves against the folder of the
// Go file that calls File.
func File(path string) Source {
	pos := caller()
	return &LocalSource{Path: resolve(pos, path), Want: KindFile, pos: pos}
}

// Dir is a local folder, copied with its symlinks, modes and empty folders.
// A relative path resolves against the folder of the Go file that calls Dir.
func Dir(path string) Source {
	pos := caller()
	return &LocalSource{Path: resolve(pos, path), Want: KindDir, pos: pos}
}

// Kind says whether a local source must be a file or a folder.
type Kind string

// The kinds of local source.
const (
	KindFile Kind = "file"
	KindDir  Kind = "folder"
)

// LocalSource is a file or folder on the machine that runs the build.
type LocalSource struct {
	Path string // absolute
	Want Kind
	pos  Pos
}

func (*LocalSource) isSource()          {}
func (s *LocalSource) describe() string { return string(s.Want) + " " + s.Path }

func resolve(pos Pos, path string) string {
	if filepath.IsAbs(path) || path == "" {
		return filepath.Clean(path)
	}
	return filepath.Join(pos.Dir(), path)
}

// ImportOption changes how an Import lands in the image.
type ImportOption func(*importSpec)

// Mode sets the mode of an imported file (for a folder: of every file in
// it; folders keep their own modes).
func Mode(m fs.FileMode) ImportOption {
	return func(s *importSpec) { s.mode = &m }
}

// Owner sets the numeric owner of everything an Import writes.
func Owner(uid, gid int) ImportOption {
	return func(s *importSpec) { s.uid, s.gid = &uid, &gid }
}

type importSpec struct {
	src      Source
	dest     string
	mode     *fs.FileMode
	uid, gid *int
}
