package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/strata-build/strata"
)

// printVersion writes what `strata version` prints: strata's module
// version, the Go version it was built with, and the platform.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "strata %s %s %s/%s\n", strata.ModuleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdVersion(_ context.Context, args []string, _ loader) error {
	if err := parseNoArgs(newFlagSet("version"), args); err != nil {
		return err
	}
	printVersion(os.Stdout)
	return nil
}
