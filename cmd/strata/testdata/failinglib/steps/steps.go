// Package steps is a library of building blocks, one of which fails.
package steps

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Failing is an image whose second step exits 4.
func Failing(name string) *dsl.Image {
	return dsl.New(name).
		From(hello.Busybox).
		Run("echo library step ran").
		Run("exit 4")
}
