// Package ten holds ten small independent images, for the benchmark of a
// fully cached build.
package ten

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

func small(name string) *dsl.Image {
	return dsl.New(name).From(hello.Busybox).Run("echo " + name + " > /name")
}

// Image0 is one of the ten.
var Image0 = small("ten0")

// Image1 is one of the ten.
var Image1 = small("ten1")

// Image2 is one of the ten.
var Image2 = small("ten2")

// Image3 is one of the ten.
var Image3 = small("ten3")

// Image4 is one of the ten.
var Image4 = small("ten4")

// Image5 is one of the ten.
var Image5 = small("ten5")

// Image6 is one of the ten.
var Image6 = small("ten6")

// Image7 is one of the ten.
var Image7 = small("ten7")

// Image8 is one of the ten.
var Image8 = small("ten8")

// Image9 is one of the ten.
var Image9 = small("ten9")

// All are the ten images, for the mage target.
var All = []*dsl.Image{Image0, Image1, Image2, Image3, Image4, Image5, Image6, Image7, Image8, Image9}
