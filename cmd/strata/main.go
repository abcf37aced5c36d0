// Command strata builds OCI images from image definitions written in Go.
//
// Commands that need the definitions (build, list) compile the Go package
// in the current folder into a cached driver binary and hand over to it;
// the others run here.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/driver"
)

func main() {
	args := os.Args[1:]
	if len(args) >= 2 && args[0] == "-C" {
		if err := os.Chdir(args[1]); err != nil {
			fmt.Fprintf(os.Stderr, "strata: %v\n", err)
			os.Exit(2)
		}
		args = args[2:]
	}
	if len(args) > 0 && strata.DefinitionCommands[args[0]] && !isHelp(args[1:]) {
		os.Exit(viaDriver(args))
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

// viaDriver compiles (or finds in the cache) the driver of the definitions
// in the current folder and replaces this process with it, so signals and
// the terminal reach the build directly.
func viaDriver(args []string) int {
	// Ctrl-C during a compile stops the go command and removes its
	// temporary files.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	start := time.Now()
	d, err := driver.Prepare(ctx, driver.Options{Dir: ".", Stderr: os.Stderr})
	stop()
	if err == nil && d.Compiled {
		// Said only when the compiler ran, so a slow start is explained
		// and a fast one stays silent.
		fmt.Fprintf(os.Stderr, "strata: compiled definitions %s in %s\n", d.Package, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		var ce *driver.CompileError
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, ce.Error())
			return 1
		}
		// stop() above cancelled ctx in every case: only an error caused
		// by the cancellation means Ctrl-C.
		if errors.Is(err, context.Canceled) {
			return 130
		}
		fmt.Fprintf(os.Stderr, "strata: %v\n", err)
		return 1
	}
	// Package-level definitions read build parameters while the driver
	// initialises, before it parses flags: hand them over in STRATA_PARAMS.
	if err := strata.ExportParams(args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "strata %s: %v\n", args[0], err)
		return 2
	}
	argv := append([]string{"strata"}, args...)
	err = syscall.Exec(d.Binary, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "strata: run driver %s: %v\n", d.Binary, err)
	return 1
}
