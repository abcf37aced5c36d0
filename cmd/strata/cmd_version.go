package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/cmdline"
)

// printVersion writes what `strata version` prints: strata's module
// version, the Go version it was built with, and the platform.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "strata %s %s %s/%s\n", strata.ModuleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdVersion(_ context.Context, args []string, _ loader) error {
	pos, err := parse(newFlagSet("version"), args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cmdline.UsageError{Err: fmt.Errorf("version takes no arguments")}
	}
	printVersion(os.Stdout)
	return nil
}
