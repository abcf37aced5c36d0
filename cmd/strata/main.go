// Command strata builds OCI images from image definitions written in Go.
//
// Commands that need the definitions (build, list, graph, publish, grab,
// chroot) compile the Go package in the current folder into a small cached
// driver that links only the definitions and strata's dsl package, run it
// to receive the definitions in a serialized form (dsl.ReadDefinitions),
// and build them here. The other commands need no definitions.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/driver"
)

func main() {
	args := os.Args[1:]
	if len(args) >= 2 && (args[0] == "-C" || args[0] == "--C") {
		if err := os.Chdir(args[1]); err != nil {
			fmt.Fprintf(os.Stderr, "strata: %v\n", err)
			os.Exit(2)
		}
		args = args[2:]
	}
	if len(args) > 0 && strata.DefinitionCommands[args[0]] && !isHelp(args[1:]) {
		targets, code := definitions(args)
		if code != 0 {
			os.Exit(code)
		}
		os.Exit(strata.Command(context.Background(), args, targets))
	}
	os.Exit(strata.Command(context.Background(), args, nil))
}

func isHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false // the rest belongs to a command in the image
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// definitions compiles (or finds in the cache) the driver of the
// definitions in the current folder, runs it and returns the targets it
// hands over; a non-zero code means it failed and said why.
func definitions(args []string) ([]strata.Target, int) {
	// Ctrl-C during a compile stops the go command and removes its
	// temporary files.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	d, err := driver.Prepare(ctx, driver.Options{Dir: ".", Stderr: os.Stderr})
	if err == nil && d.Compiled {
		// Said only when the compiler ran, so a slow start is explained
		// and a fast one stays silent.
		fmt.Fprintf(os.Stderr, "strata: compiled definitions %s in %s\n", d.Package, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		var ce *driver.CompileError
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, ce.Error())
			return nil, 1
		}
		if ctx.Err() != nil {
			return nil, 130
		}
		fmt.Fprintf(os.Stderr, "strata: %v\n", err)
		return nil, 1
	}
	// Package-level definitions read build parameters while the driver
	// initialises, before any flag is parsed: hand them over in
	// STRATA_PARAMS, which this process's own evaluation reads too.
	if err := strata.ExportParams(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "strata %s: %v\n", args[0], err)
		return nil, 2
	}
	raw, err := d.Run(ctx, os.Environ(), os.Stderr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 130
		}
		fmt.Fprintf(os.Stderr, "strata: %v\n", err)
		return nil, 1
	}
	defs, err := dsl.ReadDefinitions(bytes.NewReader(raw))
	if err != nil {
		fmt.Fprintf(os.Stderr, "strata: %v\n", err)
		return nil, 1
	}
	return defs.Targets, 0
}
