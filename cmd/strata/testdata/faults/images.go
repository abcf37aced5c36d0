// Package faults holds the images `go run mage.go faults` interrupts,
// starves of disk and builds side by side (magefiles/faults.go). They use
// no network: busybox comes from the host (examples/hello), and the
// imported noise file is written by the target before the first build.
// The image on a tarball base is in the package tarball, so that the
// other builds do not hash the tarball each time they evaluate this
// package.
//
// Sizes are build parameters so the target can size the workloads to the
// machine; an image reads only its own, so changing one size rebuilds one
// image. Each step prints "faults: ..." lines at the edges of the phase
// the target aims its signals at: it times the phases from those lines.
package faults

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Many writes FAULTS_FILES small files: a step that is busy in the
// overlay's upper dir for a while, and a commit of many entries.
var Many = dsl.New("many").From(hello.Busybox).
	Run("#!/bin/sh\nset -e\necho 'faults: writing'\nmkdir -p /many\ni=0\nwhile [ $i -lt " + dsl.Param("FAULTS_FILES", "20000") + " ]; do\n\techo \"file $i\" > /many/$i\n\ti=$((i+1))\ndone\necho 'faults: written'\n")

// Big writes FAULTS_BIG_MIB MiB in files of 8 MiB, one in three
// incompressible (slices of the imported FAULTS_NOISE file: random, but
// the same in every build, so the layer is reproducible), the others
// compressible text: a commit that takes a while in both tar+gzip and
// squashfs. The slices start at different offsets, so no two files are
// equal and squashfs cannot fold them into one.
var Big = dsl.New("big").From(hello.Busybox).
	Import(dsl.File(dsl.Param("FAULTS_NOISE", "/nonexistent/noise.bin")), "/noise.bin").
	Run("#!/bin/sh\nset -e\necho 'faults: writing'\nmkdir -p /big\ni=0\nwhile [ $((i*8)) -lt " + dsl.Param("FAULTS_BIG_MIB", "200") + " ]; do\n\tif [ $((i%3)) -eq 0 ]; then\n\t\tdd if=/noise.bin of=/big/$i bs=1M skip=$((i/3%8)) count=8 2>/dev/null\n\telse\n\t\tyes \"strata fault injection line $i\" | head -c 8388608 > /big/$i\n\tfi\n\ti=$((i+1))\ndone\nrm /noise.bin\necho 'faults: written'\n")

// Fill writes FAULTS_FILL_MIB MiB of zeros: on a small store its step
// runs out of space, while the layer it would make is tiny.
var Fill = dsl.New("fill").From(hello.Busybox).
	Run("#!/bin/sh\nset -e\necho 'faults: writing'\ndd if=/dev/zero of=/fill bs=1M count=" + dsl.Param("FAULTS_FILL_MIB", "640") + " 2>/dev/null\necho 'faults: written'\n")

// Noise writes FAULTS_NOISE_MIB MiB that do not compress (8 MiB slices
// of the imported FAULTS_NOISE file at shifting offsets): its step fits on
// a small store but its commit, a layer as large as the step's output,
// does not.
var Noise = dsl.New("noise").From(hello.Busybox).
	Import(dsl.File(dsl.Param("FAULTS_NOISE", "/nonexistent/noise.bin")), "/noise.bin").
	Run("#!/bin/sh\nset -e\necho 'faults: writing'\ni=0\nwhile [ $((i*8)) -lt " + dsl.Param("FAULTS_NOISE_MIB", "360") + " ]; do\n\tdd if=/noise.bin bs=1M skip=$((i%8)) count=8 2>/dev/null >> /noise\n\ti=$((i+1))\ndone\nrm /noise.bin\necho 'faults: written'\n")

// conc is one of the images built side by side on one store: a little
// of everything (files, 4 MiB of text, a folder removed from the base).
func conc(name string) *dsl.Image {
	return dsl.New(name).From(hello.Busybox).
		Run("#!/bin/sh\nset -e\nmkdir -p /c\ni=0\nwhile [ $i -lt 2000 ]; do echo \"" + name + " $i\" > /c/$i; i=$((i+1)); done\nyes " + name + " | head -c 4194304 > /c/data\nrm -rf /usr/sbin\n")
}

// Conc0 is one of four images the concurrency trials build.
var Conc0 = conc("conc0")

// Conc1 is one of four images the concurrency trials build.
var Conc1 = conc("conc1")

// Conc2 is one of four images the concurrency trials build.
var Conc2 = conc("conc2")

// Conc3 is one of four images the concurrency trials build.
var Conc3 = conc("conc3")
