package layer

// A layer folder is in overlay form (see internal/overlayfs); a tar layer
// is in OCI form (image-spec layer.md): a deleted path is an empty entry
// named .wh.NAME and an opaque folder holds the entry .wh..wh..opq. The
// walker (walk.go) translates the first into the second, umoci's
// extractor with CheckEntry (unpack.go, policy.go) the second into the
// first; squashfs layers keep the overlay form.

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)
