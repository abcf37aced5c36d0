// Package deep stacks 50 images on top of each other, more than a
// mount(2) option string of layer paths can hold.
package deep

import (
	"fmt"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Depth is how many images Top stands on, busybox excluded.
const Depth = 50

// Top is the 50th image of the chain; the others are build-only.
var Top = chain()

func chain() *dsl.Image {
	img := hello.Busybox
	for i := 1; i < Depth; i++ {
		img = dsl.New(fmt.Sprintf("level%02d", i)).From(img).
			Run(fmt.Sprintf("echo %d > /level%02d", i, i)).BuildOnly()
	}
	return dsl.New("top").From(img).Run("echo top > /top; rm /level01")
}
