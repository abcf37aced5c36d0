// Package cpu holds ten independent images whose step each spends about
// one second of CPU in one process, for the --jobs benchmark.
package cpu

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// spin counts in the shell: one process, no I/O, a fixed amount of work
// (about one CPU-second of busybox sh on the benchmark machine).
func spin(name string) *dsl.Image {
	return dsl.New(name).From(hello.Busybox).
		Run("#!/bin/sh\ni=0\nwhile [ $i -lt 1100000 ]; do i=$((i+1)); done\necho " + name + " > /name\n")
}

// Spin0 is one of the ten.
var Spin0 = spin("cpu0")

// Spin1 is one of the ten.
var Spin1 = spin("cpu1")

// Spin2 is one of the ten.
var Spin2 = spin("cpu2")

// Spin3 is one of the ten.
var Spin3 = spin("cpu3")

// Spin4 is one of the ten.
var Spin4 = spin("cpu4")

// Spin5 is one of the ten.
var Spin5 = spin("cpu5")

// Spin6 is one of the ten.
var Spin6 = spin("cpu6")

// Spin7 is one of the ten.
var Spin7 = spin("cpu7")

// Spin8 is one of the ten.
var Spin8 = spin("cpu8")

// Spin9 is one of the ten.
var Spin9 = spin("cpu9")
