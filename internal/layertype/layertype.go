// Package layertype names the encodings of a layer blob. It is a leaf
// that both the definitions (dsl, which does no I/O) and the encoders
// (storage/layer) import, so that a layer type is parsed once, where it
// enters strata (a flag, a serialized form), and carried typed from there.
package layertype

import (
	"fmt"
	"strings"
)

// Type is the encoding of a layer blob. Its JSON form is its canonical
// name.
type Type string

const (
	// TarGzip is an OCI tar layer compressed with gzip; the default because
	// every registry and runtime reads it.
	TarGzip Type = "tar+gzip"
	// TarZstd is an OCI tar layer compressed with zstd: faster to write and
	// read than gzip, but needs a recent runtime.
	TarZstd Type = "tar+zstd"
	// Squashfs is a stacker-style squashfs image of the upper dir, keeping
	// overlay-format whiteouts so it can be mounted directly as a lowerdir.
	Squashfs Type = "squashfs"
	// Erofs is a stacker-style erofs image of the upper dir (lz4), with
	// overlay-format whiteouts like Squashfs.
	Erofs Type = "erofs"
	// TarUncompressed is a plain OCI tar layer. Bases may use it; strata
	// writes it only when asked explicitly.
	TarUncompressed Type = "tar+uncompressed"
)

// Parse parses a layer type name as a user writes it. "tar" means tar+gzip
// (as in stacker) and "zstd" is a shorthand for tar+zstd.
func Parse(s string) (Type, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tar", "tar+gzip", "gzip":
		return TarGzip, nil
	case "tar+zstd", "zstd":
		return TarZstd, nil
	case "squashfs":
		return Squashfs, nil
	case "erofs":
		return Erofs, nil
	case "tar+uncompressed":
		return TarUncompressed, nil
	}
	return "", fmt.Errorf("unknown layer type %q: valid types are \"tar\" (= tar+gzip), \"tar+gzip\", \"tar+zstd\", \"zstd\" (= tar+zstd), \"squashfs\" and \"erofs\"", s)
}

// String returns the canonical name of t.
func (t Type) String() string { return string(t) }

// Known reports whether t is one of the types above. A Type made by a
// conversion (dsl.LayerType("tar")) rather than by Parse or a decoder may
// be neither canonical nor known.
func (t Type) Known() bool {
	switch t {
	case TarGzip, TarZstd, Squashfs, Erofs, TarUncompressed:
		return true
	}
	return false
}

// Tar reports whether t is one of the OCI tar encodings, which any OCI
// tool reads.
func (t Type) Tar() bool { return t.Known() && !t.FS() }

// FS reports whether t is a file system image (squashfs, erofs): a layer
// that is mounted as it is, with overlay whiteouts and a dm-verity tree.
func (t Type) FS() bool { return t == Squashfs || t == Erofs }

// UnmarshalText accepts only canonical names: serialized forms are written
// by strata, so an alias or an unknown name there means another writer,
// which must not be guessed at.
func (t *Type) UnmarshalText(b []byte) error {
	if v := Type(b); v.Known() {
		*t = v
		return nil
	}
	return fmt.Errorf("%q is not a layer type", b)
}
