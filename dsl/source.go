package dsl

import (
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/strata-build/strata/internal/imagepath"
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
// changed base rebuilds everything on top of it. A tag that names an image
// index (as `skopeo copy --all` and buildx write) is resolved, through
// nested indexes, to the image of this machine's platform.
func Layout(path, tag string) Base {
	pos := caller()
	return &LayoutBase{Path: resolve(pos, path), Tag: tag, raw: path, pos: pos}
}

// LayoutBase is a base in a local OCI layout; see Layout.
type LayoutBase struct {
	Path string
	Tag  string
	raw  string // as written, for placeholders
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
	return &LocalSource{Path: resolve(pos, path), Want: KindFile, raw: path, pos: pos}
}

// Dir is a local folder, copied with its symlinks, modes and empty folders.
// A relative path resolves against the folder of the Go file that calls Dir.
//
// Below the folder itself, Dir never imports (nor hashes for the cache
// key) any entry named .git (a repository's folder, or the file a worktree
// or submodule has in its place), any folder that is a strata store (it
// holds the CACHEDIR.TAG file a store writes) or any folder that is an OCI
// image layout (it holds both oci-layout and index.json). So Dir("..") of
// a module's root leaves out .git, the store (.strata) and the output
// layout (oci). A Dir whose own path is such a folder imports it.
// Exclude leaves out more. What is left out is hidden from the steps'
// view of the folder at ImportDir too.
func Dir(path string, opts ...DirOption) Source {
	pos := caller()
	var d dirSpec
	for _, o := range opts {
		o(&d)
	}
	return &LocalSource{Path: resolve(pos, path), Want: KindDir, Exclude: d.exclude, raw: path, pos: pos}
}

// DirOption changes which entries of a Dir are imported.
type DirOption func(*dirSpec)

type dirSpec struct {
	exclude []string
}

// Exclude leaves out of a Dir the entries that match patterns, in the
// style of .dockerignore and .gitignore, matched against the entry's path
// relative to the folder:
//
//   - "*" matches any run of characters but "/", "?" any one of them,
//     "[a-z]" a class of them, and "\" escapes the next character;
//   - "**" as a whole path segment matches any number of folders;
//     "dir/**" matches everything inside dir but not dir itself;
//   - a pattern without a leading "/" matches at any depth ("*.log" is
//     every log file); a leading "/" anchors it to the folder ("/build");
//   - a trailing "/" matches folders only ("node_modules/");
//   - a leading "!" imports again what an earlier pattern left out; the
//     last pattern that matches an entry decides.
//
// An excluded folder is not entered, so a "!" pattern cannot bring back
// something inside it: write "/build/**" and "!/build/keep" to keep one
// entry of build. Excluded entries are neither copied nor part of the cache
// key: changing them rebuilds nothing. A malformed pattern is an error when
// the definition is evaluated, naming the line of the Dir call. Exclude
// may be given more than once; the patterns add up in order.
func Exclude(patterns ...string) DirOption {
	return func(d *dirSpec) { d.exclude = append(d.exclude, patterns...) }
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
	// Exclude are the patterns of the Dir's Exclude options, in order.
	Exclude []string
	raw     string // as written, for placeholders
	pos     Pos
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

// Mode sets the mode of an imported file; for a folder, the mode of the
// destination folder itself (what it holds keeps the source's modes, so
// executables stay executable).
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

// Pull returns a base pulled from a registry: "docker://host[:port]/repo:tag"
// or ".../repo@sha256:...". A base pinned by digest is fetched once and
// then never asked for again; a tag costs one small manifest request per
// build. Credentials come from the docker config (~/.docker/config.json,
// $DOCKER_CONFIG) and the containers auth file.
func Pull(ref string, opts ...PullOption) Base {
	pos := caller()
	p := &PullBase{Ref: strings.TrimPrefix(ref, "docker://"), pos: pos}
	for _, o := range opts {
		o(p)
	}
	return p
}

// PullBase is a base in a registry; see Pull.
type PullBase struct {
	Ref string
	// Insecure allows plain HTTP and unverified TLS for this registry.
	Insecure bool
	// Platform selects the image of a multi-platform index ("linux/arm64");
	// default: the machine's.
	Platform string
	pos      Pos
}

func (*PullBase) isBase() {}

// PullOption changes a Pull.
type PullOption func(*PullBase)

// Insecure lets a Pull use plain HTTP or a registry whose TLS certificate
// cannot be verified.
func Insecure() PullOption { return func(p *PullBase) { p.Insecure = true } }

// Platform selects the os/arch[/variant] of a multi-platform image.
func Platform(platform string) PullOption { return func(p *PullBase) { p.Platform = platform } }

// Tarball returns a base made from a rootfs tarball (plain, gzip or zstd,
// detected from its content): a local path (relative to the calling Go
// file's folder) or an http(s) URL, which must then be pinned with
// SHA256(hex). A local file may be pinned too: evaluation fails, naming the
// path and both digests, when its content does not match the pin.
func Tarball(pathOrURL string, opts ...RemoteOption) Base {
	pos := caller()
	t := &TarballBase{pos: pos, raw: pathOrURL}
	if isURL(pathOrURL) {
		t.URL = pathOrURL
	} else {
		t.Path = resolve(pos, pathOrURL)
	}
	for _, o := range opts {
		o(&t.Remote)
	}
	return t
}

// TarballBase is a rootfs tarball used as a base; see Tarball.
type TarballBase struct {
	Path, URL string
	Remote    Remote
	raw       string // as written, for placeholders
	pos       Pos
}

func (*TarballBase) isBase() {}

// Remote holds the settings of something downloaded.
type Remote struct {
	// SHA256 is the expected digest of the download, in hex.
	SHA256 string
}

// RemoteOption changes a download.
type RemoteOption func(*Remote)

// SHA256 pins a download to its sha256 digest (hex).
// (Lowercased when the definition is evaluated, after placeholders.)
func SHA256(hex string) RemoteOption { return func(r *Remote) { r.SHA256 = hex } }

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

// URL is a file downloaded from url and checked against its sha256 digest
// (hex). It is downloaded once into the store and reused offline. An
// unpinned URL (empty sha256) is an error unless the build allows it with
// --allow-unpinned-urls.
func URL(url, sha256 string) Source {
	return &URLSource{URL: url, SHA256: sha256, pos: caller()}
}

// URLSource is a downloaded file; see URL.
type URLSource struct {
	URL, SHA256 string
	pos         Pos
}

func (*URLSource) isSource()          {}
func (s *URLSource) describe() string { return "URL " + s.URL }

// FromImage is a file or folder at path in another definition's built
// rootfs. That definition becomes a dependency: it is built first (a
// build-only builder producing a binary for a scratch image is the
// canonical case).
func FromImage(img *Image, path string) Source {
	return &ImageSource{Image: img, Path: path, pos: caller()}
}

// ImageSource is a path in another image; see FromImage.
type ImageSource struct {
	Image *Image
	Path  string
	pos   Pos
}

func (*ImageSource) isSource() {}
func (s *ImageSource) describe() string {
	if s.Image == nil {
		return "path " + s.Path + " of a nil image"
	}
	return "path " + s.Path + " of image " + s.Image.name
}

// ImportDir, /.strata/imports, is where a step finds the sources of the
// image's imports while it runs, read-only, by their base name
// (ImportDir/greeting.txt, ImportDir/tool.tar.gz for a URL), as stacker's
// /stacker/imports does. Where imports share a base name, it shows the
// last of them (see Image.Import). Nothing under ImportDir is ever part of
// the image.
const ImportDir = imagepath.Imports
