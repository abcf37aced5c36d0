package layer

import (
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Type is the encoding of a layer blob.
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
	// TarUncompressed is a plain OCI tar layer. Bases may use it; strata
	// writes it only when asked explicitly.
	TarUncompressed Type = "tar+uncompressed"
)

// Media types of stacker's squashfs layers. Which compressor a blob uses is
// part of its media type, as stacker records it.
const (
	MediaTypeSquashfsZstd = "application/vnd.stacker.image.layer.squashfs+zstd"
	MediaTypeSquashfsGzip = "application/vnd.stacker.image.layer.squashfs+gzip"
	// MediaTypeSquashfs is the media type stacker used before it recorded
	// the compressor; unsquashfs detects the compressor itself.
	MediaTypeSquashfs = "application/vnd.stacker.image.layer.squashfs"
)

// Docker's layer media types, accepted when reading bases pulled from
// registries that still serve Docker v2 schema 2 images.
const (
	mediaTypeDockerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeDockerForeign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ParseType parses a user-facing layer type name. "tar" means tar+gzip (as in
// stacker) and "zstd" is a shorthand for tar+zstd.
func ParseType(s string) (Type, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tar", "tar+gzip", "gzip":
		return TarGzip, nil
	case "tar+zstd", "zstd":
		return TarZstd, nil
	case "squashfs":
		return Squashfs, nil
	case "tar+uncompressed":
		return TarUncompressed, nil
	}
	return "", fmt.Errorf("unknown layer type %q: valid types are \"tar\" (= tar+gzip), \"tar+gzip\", \"tar+zstd\", \"zstd\" (= tar+zstd) and \"squashfs\"", s)
}

// String returns the canonical name of t, accepted by ParseType.
func (t Type) String() string { return string(t) }

// MediaType returns the OCI media type of layers of type t. For Squashfs it is
// the zstd variant; Write reports the media type it actually used (gzip when
// the installed mksquashfs lacks zstd) in Result.MediaType.
func (t Type) MediaType() string {
	switch t {
	case TarGzip:
		return ispec.MediaTypeImageLayerGzip
	case TarZstd:
		return ispec.MediaTypeImageLayerZstd
	case Squashfs:
		return MediaTypeSquashfsZstd
	case TarUncompressed:
		return ispec.MediaTypeImageLayer
	}
	return ""
}

// TypeOfMediaType maps the media type of an existing layer (for example of a
// base image) to its Type.
func TypeOfMediaType(mt string) (Type, error) {
	switch mt {
	case ispec.MediaTypeImageLayerGzip, ispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // bases may still use them
		mediaTypeDockerTarGzip, mediaTypeDockerForeign:
		return TarGzip, nil
	case ispec.MediaTypeImageLayerZstd, ispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck // bases may still use them
		return TarZstd, nil
	case ispec.MediaTypeImageLayer, ispec.MediaTypeImageLayerNonDistributable: //nolint:staticcheck // bases may still use them
		return TarUncompressed, nil
	case MediaTypeSquashfsZstd, MediaTypeSquashfsGzip, MediaTypeSquashfs:
		return Squashfs, nil
	}
	return "", fmt.Errorf("unsupported layer media type %q", mt)
}

// WriteOptions tunes Write.
type WriteOptions struct {
	// SourceDateEpoch is the upper bound of every timestamp in the layer:
	// later mtimes are clamped to it and atime/ctime are never recorded.
	// The zero value means the Unix epoch, so all mtimes become 0.
	SourceDateEpoch time.Time
	// UserXattr says the overlay was mounted with userxattr (rootless), so
	// overlay's own xattrs are user.overlay.* instead of trusted.overlay.*.
	UserXattr bool
	// Mksquashfs is the path of the mksquashfs binary for squashfs layers;
	// empty means looking it up in $PATH. A sandbox's finisher has no PATH
	// of its own, so its parent resolves the binary and passes it on.
	Mksquashfs string
	// Level is the compression level in the compressor's own scale (zstd
	// 1..22, gzip 1..9). 0 picks a fast default per type.
	Level int
}

// epoch returns the clamp time in whole seconds.
func (o WriteOptions) epoch() time.Time {
	if o.SourceDateEpoch.IsZero() {
		return time.Unix(0, 0)
	}
	return time.Unix(o.SourceDateEpoch.Unix(), 0)
}

// Result describes the blob Write produced.
type Result struct {
	// Empty reports that the upper dir held no changes: no blob was written
	// and the caller adds no layer.
	Empty bool
	// Digest is the digest of the blob as written.
	Digest digest.Digest
	// DiffID is the digest of the uncompressed tar; for squashfs it equals
	// Digest, as stacker records it.
	DiffID digest.Digest
	// Size is the size of the blob in bytes.
	Size int64
	// MediaType is the media type to put in the layer descriptor.
	MediaType string
}

// UnpackOptions tunes Unpack.
type UnpackOptions struct {
	// UserXattr writes overlay xattrs (opaque dirs) as user.overlay.*, for
	// overlays mounted with userxattr (rootless).
	UserXattr bool
	// Rootless tolerates what an unprivileged user cannot do (chown to
	// other ids, trusted.* xattrs, device nodes).
	Rootless bool
	// Digest, when set, is the expected digest of the blob. The blob is
	// hashed while it is read and a mismatch fails Unpack; dest must then be
	// discarded by the caller.
	Digest digest.Digest
	// DiffID, when set for a tar layer, is the expected digest of the
	// uncompressed tar: a layer from an untrusted cache must also match the
	// diff ID its image config will claim.
	DiffID digest.Digest
	// MinFree is the free space, in bytes, the unpack must leave on the
	// file system of dest: it stops with ErrFreeSpace when less would be
	// left, checked as it writes. 0 means FreeSpaceFloor, the floor the
	// build checks at its start; a negative value turns the check off.
	MinFree int64
}
