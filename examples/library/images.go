// Package library builds two images from the typed building blocks of
// examples/library/blocks.
//
//	strata build
//	strata run web
//	strata run worker
package library

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/library/blocks"
)

// base is shared: both images build on one layer.
var base = blocks.Base("platform-team")

// Web greets like a web front end. (Typed explicitly: strata finds the
// images of a package by their declared or evident *dsl.Image type.)
var Web *dsl.Image = blocks.App("web", base, `echo "web: serving as $(id -un)"`)

// Worker greets like a background worker.
var Worker *dsl.Image = blocks.App("worker", base, `echo "worker: working as $(id -un)"`)
