package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
)

// chrootFlags are the flags of strata chroot.
type chrootFlags struct {
	store string
	param strata.ParamFlags
}

func (f *chrootFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder`")
	f.param.Register(fs)
}

// cmdChroot opens a shell in a throw-away writable copy of a built image
// of the definitions.
func cmdChroot(ctx context.Context, args []string, load loader) error {
	fs := newFlagSet("chroot")
	var f chrootFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	params, err := f.param.Params()
	if err != nil {
		return err
	}
	patterns, pos := leadingPatterns(pos)
	name, cmd, err := nameAndCommand("chroot", pos)
	if err != nil {
		return err
	}
	if _, err := os.Stat(f.store); err != nil {
		return fmt.Errorf("no store at %s: build %s first", f.store, name)
	}
	targets, err := load.load(ctx, "chroot", patterns)
	if err != nil {
		return err
	}
	// Layer types are not part of cache keys, so the image is found
	// whatever types it was built in.
	n, err := definedNode(ctx, targets, name, params)
	if err != nil {
		return err
	}
	if n == nil {
		return fmt.Errorf("no image named %q in the definitions (strata list shows them)", name)
	}
	st, err := runtime.OpenStore(ctx, f.store, storage.OpenOptions{Log: os.Stderr})
	if err != nil {
		return err
	}
	defer st.Close()
	epoch, err := runtime.EpochFromEnv()
	if err != nil {
		return err
	}
	err = runtime.Chroot(ctx, runtime.ChrootOptions{Store: st, Node: n, Command: cmd, SourceDateEpoch: epoch})
	return processExit("chroot", err)
}
