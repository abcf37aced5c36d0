package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/runtime/host"
)

// checkFlags are the flags of strata check.
type checkFlags struct {
	store           string
	squashfs, erofs bool
}

func (f *checkFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder` the builds will use")
	fs.BoolVar(&f.squashfs, "squashfs", false, "the builds will write squashfs layers: mksquashfs is required")
	fs.BoolVar(&f.erofs, "erofs", false, "the builds will write erofs layers: mkfs.erofs is required")
}

// cmdCheck prints one line per check and fails when a check a build needs
// failed.
func cmdCheck(ctx context.Context, args []string) error {
	fs := newFlagSet("check")
	var f checkFlags
	f.register(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	checks := host.RunChecks(ctx, host.CheckOptions{Store: f.store, Squashfs: f.squashfs, Erofs: f.erofs})
	if !printChecks(os.Stdout, checks) {
		return exitStatus(1)
	}
	return nil
}

// printChecks writes one line per check and reports whether every check a
// build needs passed. A failed optional check is a warning.
func printChecks(w io.Writer, checks []host.Check) bool {
	ok := true
	for _, c := range checks {
		status := "ok"
		switch {
		case !c.OK && c.Required:
			status, ok = "FAILED", false
		case !c.OK:
			status = "warning"
		}
		line := fmt.Sprintf("%-7s %s: %s", status, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			line += "; fix: " + c.Fix
		}
		fmt.Fprintln(w, line)
	}
	return ok
}
