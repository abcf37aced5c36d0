package strata

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
)

// ModuleVersion is strata's version: the module version the go command recorded
// in the binary (go install ...@v1.2.3, go get -tool), else "(devel)"
// with the VCS revision when the build recorded one.
func ModuleVersion() string {
	v := dsl.ModuleVersion()
	if v != "(devel)" {
		return v
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			return fmt.Sprintf("(devel) %s%s", rev[:12], dirty)
		}
	}
	return v
}

// printVersion writes what `strata version` prints: strata's module
// version, the Go version it was built with, and the platform.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "strata %s %s %s/%s\n", ModuleVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdVersion(_ context.Context, args []string, _ Loader) error {
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
