package dsl

import (
	"slices"

	"github.com/strata-build/strata/internal/layertype"
)

// LayerType is an encoding of an image's layer. It is the type the
// encoders take, so a type chosen here reaches them unparsed.
type LayerType = layertype.Type

// The layer types strata writes.
const (
	// TarGzip is the OCI tar+gzip layer every tool reads; the default.
	TarGzip = layertype.TarGzip
	// TarZstd is a tar+zstd layer: faster to write and smaller.
	TarZstd = layertype.TarZstd
	// Squashfs is a squashfs layer as stacker writes it, tagged NAME-squashfs.
	Squashfs = layertype.Squashfs
	// Erofs is an erofs layer as stacker writes it, tagged NAME-erofs.
	Erofs = layertype.Erofs
)

// LayerTypes sets the encodings of this image's layer, overriding the
// build's --layer-type. The first is tagged with the plain name, squashfs
// as NAME-squashfs, erofs as NAME-erofs, tar+zstd (when not first) as
// NAME-zstd. All come from
// one run of the steps.
func (i *Image) LayerTypes(types ...LayerType) *Image {
	c := i.clone()
	// Parsed as Options.LayerTypes are: a name --layer-type takes is the
	// type it names.
	parsed := make([]LayerType, len(types))
	for n, t := range types {
		var err error
		if parsed[n], err = layertype.Parse(string(t)); err != nil {
			c.fail("LayerTypes: %v (use dsl.TarGzip, dsl.TarZstd, dsl.Squashfs or dsl.Erofs)", err)
			return c
		}
	}
	c.types = parsed
	return c
}

// OwnLayerTypes returns the layer types set with LayerTypes, or nil.
func (i *Image) OwnLayerTypes() []LayerType { return slices.Clone(i.types) }
