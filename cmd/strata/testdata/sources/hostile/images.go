// Package hostile builds on rootfs tarballs that try to write outside the
// rootfs; the test writes them to a temporary folder and names them with
// build parameters.
package hostile

import "github.com/strata-build/strata/dsl"

// Escape is a tarball with a "../" entry: refused before unpacking.
var Escape = dsl.New("escape").From(dsl.Tarball(dsl.RequiredParam("ESCAPE"))).Run("true")

// Sneaky is a tarball whose symlink points at a host folder, with a file
// written through it: the file must land inside the rootfs.
var Sneaky = dsl.New("sneaky").
	From(dsl.Tarball(dsl.RequiredParam("SNEAKY"))).
	Run("cat " + dsl.RequiredParam("VICTIM") + "/pwned")
