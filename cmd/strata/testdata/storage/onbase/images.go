// Package onbase builds on an image of an OCI layout named by the
// environment (STRATA_TEST_BASE_LAYOUT, STRATA_TEST_BASE_TAG), to test
// bases whose layers are squashfs or tar.
package onbase

import (
	"os"

	"github.com/strata-build/strata/dsl"
)

var base = dsl.Layout(os.Getenv("STRATA_TEST_BASE_LAYOUT"), os.Getenv("STRATA_TEST_BASE_TAG"))

// OnTar is a tar image on the base.
var OnTar = dsl.New("ontar").From(base).Run("cat /sq > /ontar")

// OnSq is a squashfs image on the base.
var OnSq = dsl.New("onsq").From(base).Run("cat /sq > /onsq").LayerTypes(dsl.Squashfs)

// OnEro is an erofs image on the base.
var OnEro = dsl.New("onero").From(base).Run("cat /sq > /onero").LayerTypes(dsl.Erofs)
