package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
)

// runFlags are the flags of strata run.
type runFlags struct{ store, layout string }

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder`")
	fs.StringVar(&f.layout, "layout", strata.DefaultLayout(), "OCI layout `folder` the image is tagged in")
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
	name, cmd, err := nameAndCommand("run", pos)
	if err != nil {
		return err
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
		return notTagged(ctx, f.store, name, tnf)
	}
	return processExit("run", err)
}

// notTagged explains a run of an image the layout has no tag for. run
// reads the layout, not the definitions, so it cannot ask whether name is
// build-only; but the store records every image it built, and one that
// was built and is not tagged is, but for a removed layout, build-only.
func notTagged(ctx context.Context, store, name string, tnf *storage.TagNotFoundError) error {
	if builtInStore(ctx, store, name) {
		return fmt.Errorf("image %q was built but is not tagged in %s: it is a build-only image, which is never tagged, so strata run cannot start it; "+
			"get a shell in it with strata chroot %s (or, if it is not build-only, tag it with strata build %s)", name, tnf.Layout, name, name)
	}
	return fmt.Errorf("%w: build it first (strata build %s), or name a built one; a build-only image is never tagged: get a shell in it with strata chroot %s", tnf, name, name)
}

// builtInStore reports whether the store has built an image named name.
func builtInStore(ctx context.Context, store, name string) bool {
	if _, err := os.Stat(store); err != nil {
		return false
	}
	st, err := runtime.OpenStore(ctx, store, storage.OpenOptions{NoWait: true, Log: io.Discard})
	if err != nil {
		return false // a build holds the store: say what covers both cases
	}
	defer st.Close()
	return st.Last(name) != nil
}
