// Command strata builds OCI images from image definitions written in Go.
//
// Commands that need the definitions (build, list, graph, publish, grab,
// chroot) compile each definitions package into a small cached driver that
// links only the definitions and strata's dsl package, run it to receive
// the definitions in a serialized form (dsl.ReadDefinitions), and build
// them here. The other commands need no definitions.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/strata-build/strata/internal/timings"
	_ "github.com/strata-build/strata/runtime/buildkit" // --backend buildkit://, unix://, docker-container://, kube-pod://
	"github.com/strata-build/strata/storage/layer"
)

func main() {
	timings.FromStart("package init, until main")
	args := os.Args[1:]
	if len(args) >= 2 && (args[0] == "-C" || args[0] == "--C") {
		if err := os.Chdir(args[1]); err != nil {
			fmt.Fprintf(os.Stderr, "strata: %v\n", err)
			os.Exit(2)
		}
		args = args[2:]
	}
	if len(args) > 0 {
		// Package-level definitions read build parameters while their
		// driver initialises, before any flag is parsed: hand them over
		// in STRATA_PARAMS, which this process's evaluation reads too.
		if err := exportParams(args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "strata %s: %v\n", args[0], err)
			os.Exit(2)
		}
	}
	// A root build encodes its layers in this process, which holds little
	// else: the encoders' GOGC keeps a commit's peak memory down. Without
	// root the sandbox children encode, and set it themselves.
	if os.Geteuid() == 0 {
		layer.UseEncoderGC()
	}
	code := execute(context.Background(), args, loadPackages)
	timings.Print(os.Stderr)
	os.Exit(code)
}
