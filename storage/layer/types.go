package layer

import (
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/verity"
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

// MediaType returns the OCI media type of layers of type t. For Squashfs it is
// the zstd variant; Write reports the media type it actually used (gzip when
// the installed mksquashfs lacks zstd) in Result.MediaType.
func MediaType(t layertype.Type) string {
	switch t {
	case layertype.TarGzip:
		return ispec.MediaTypeImageLayerGzip
	case layertype.TarZstd:
		return ispec.MediaTypeImageLayerZstd
	case layertype.Squashfs:
		return MediaTypeSquashfsZstd
	case layertype.Erofs:
		return MediaTypeErofsLZ4
	case layertype.TarUncompressed:
		return ispec.MediaTypeImageLayer
	}
	return ""
}

// TypeOfMediaType maps the media type of an existing layer (for example of a
// base image) to its type.
func TypeOfMediaType(mt string) (layertype.Type, error) {
	switch mt {
	case ispec.MediaTypeImageLayerGzip, ispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // bases may still use them
		mediaTypeDockerTarGzip, mediaTypeDockerForeign:
		return layertype.TarGzip, nil
	case ispec.MediaTypeImageLayerZstd, ispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck // bases may still use them
		return layertype.TarZstd, nil
	case ispec.MediaTypeImageLayer, ispec.MediaTypeImageLayerNonDistributable: //nolint:staticcheck // bases may still use them
		return layertype.TarUncompressed, nil
	case MediaTypeSquashfsZstd, MediaTypeSquashfsGzip, MediaTypeSquashfs:
		return layertype.Squashfs, nil
	case MediaTypeErofsLZ4HC, MediaTypeErofsLZ4, MediaTypeErofsZstd, MediaTypeErofs:
		return layertype.Erofs, nil
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
	// SquashfsWriter picks the squashfs encoder: SquashfsNative (also
	// when empty) or SquashfsMksquashfs.
	SquashfsWriter string
	// MkfsErofs is the path of mkfs.erofs for erofs layers, as Mksquashfs.
	MkfsErofs string
	// NoVerity leaves the dm-verity tree off squashfs and erofs layers.
	NoVerity bool
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
	// RootHash is the dm-verity root hash (hex) of a squashfs or erofs
	// layer, for the descriptor's verity annotation; empty without one.
	RootHash string
}

// Annotations returns the layer descriptor's annotations for r: the
// verity root hash, or nil.
func (r Result) Annotations() map[string]string {
	if r.RootHash == "" {
		return nil
	}
	return map[string]string{verity.RootHashAnnotation: r.RootHash}
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
