// Package importtwice imports files that share a base name, as stacker's
// import matrix does: one file to two places, and a local file beside a
// file of the same name taken from another image.
package importtwice

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Twice copies a.txt to /x and to /y, and records in /seen what a step
// reads at /.strata/imports/a.txt.
var Twice = dsl.New("twice").
	From(hello.Busybox).
	Import(dsl.File("a.txt"), "/x").
	Import(dsl.File("a.txt"), "/y").
	Run("cat /.strata/imports/a.txt > /seen")

// Maker is a build-only image with an a.txt of its own.
var Maker = dsl.New("maker").
	From(hello.Busybox).
	Run("mkdir -p /out && echo made a > /out/a.txt").
	BuildOnly()

// Beside copies the local a.txt to /local and Maker's to /made; the later
// import is the one a step reads at /.strata/imports/a.txt.
var Beside = dsl.New("beside").
	From(hello.Busybox).
	Import(dsl.File("a.txt"), "/local").
	Import(dsl.FromImage(Maker, "/out/a.txt"), "/made").
	Run("cat /.strata/imports/a.txt > /seen")
