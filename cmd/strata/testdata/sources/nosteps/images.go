// Package nosteps holds an image with no steps on a rootfs tarball: a base
// given a label, built to bring the tarball into the store.
package nosteps

import "github.com/strata-build/strata/dsl"

// Base only labels the tarball named by ROOTFS.
var Base = dsl.New("base").From(dsl.Tarball(dsl.RequiredParam("ROOTFS"))).Label("stage", "base")
