// Package testlib is a stand-in for a user's library of building blocks,
// for dsl's tests of positions: its functions call dsl on behalf of the
// tests, the way a team's blocks.App does for a definitions package. The
// tests find the lines they expect by the "line:" comments.
package testlib

import "github.com/strata-build/strata/dsl"

// App is an image with one Run step written here.
func App(name string) *dsl.Image {
	img := dsl.New(name).From(dsl.Scratch()) // line: app-new
	return img.Run("echo " + name)           // line: app-run
}

// Wrapped calls App through one more library function.
func Wrapped(name string) *dsl.Image {
	return App(name) // line: wrapped
}

// Deep calls App through depth more library functions.
func Deep(depth int, name string) *dsl.Image {
	if depth == 0 {
		return Wrapped(name) // line: deep-end
	}
	return Deep(depth-1, name) // line: deep
}

// WithEcho is an Option whose step is written inside the closure.
func WithEcho(text string) dsl.Option {
	return func(img *dsl.Image) *dsl.Image {
		return img.Run("echo " + text) // line: with-echo
	}
}

// Copy is an image importing src, a source the caller made: a relative
// path in it resolved against the caller's folder, not this one.
func Copy(name string, src dsl.Source) *dsl.Image {
	return dsl.New(name).From(dsl.Scratch()).Import(src, "/src") // line: copy
}
