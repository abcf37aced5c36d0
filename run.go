package strata

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
)

// runFlags are the flags of strata run.
type runFlags struct{ store, layout string }

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", ".strata", "store `folder`")
	fs.StringVar(&f.layout, "layout", "oci", "OCI layout `folder` the image is tagged in")
}

// cmdRun runs a tagged image of the output layout as its config says.
func cmdRun(ctx context.Context, args []string) error {
	fs := newFlagSet("run")
	var f runFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] == "--" {
		return usageError{errors.New("which image? strata run NAME [-- CMD...]")}
	}
	name, cmd := pos[0], pos[1:]
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if _, err := os.Stat(f.layout); err != nil {
		return fmt.Errorf("no OCI layout at %s: build %s first", f.layout, name)
	}
	err = runtime.RunImage(ctx, runtime.RunOptions{
		Store:   f.store,
		Layout:  f.layout,
		Image:   name,
		Command: cmd,
	})
	if tnf := (*storage.TagNotFoundError)(nil); errors.As(err, &tnf) {
		return fmt.Errorf("%w: build it first (strata build %s), or name a built one", err, name)
	}
	return processExit("run", err)
}

// exitStatus ends strata with a status and no message.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the status strata exits with.
func (e exitStatus) ExitCode() int { return int(e) }
