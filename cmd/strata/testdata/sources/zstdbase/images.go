// Package zstdbase builds on a rootfs tarball compressed with zstd; the
// test writes it to a temporary folder and names it with a build
// parameter.
package zstdbase

import "github.com/strata-build/strata/dsl"

var rootfs = dsl.RequiredParam("ROOTFS")

// Gzip is built in the default layer type: its base must be recompressed
// so that the image has gzip layers only.
var Gzip = dsl.New("gzip").From(dsl.Tarball(rootfs)).Run("echo hi > /hi")

// Zstd asks for zstd layers: the tarball is its base layer as it is.
var Zstd = dsl.New("zstd").From(dsl.Tarball(rootfs)).Run("echo hi > /hi").LayerTypes(dsl.TarZstd)
