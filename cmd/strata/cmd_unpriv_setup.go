package main

import (
	"errors"
	"flag"
	"os"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/runtime/host"
)

// unprivFlags are the flags of strata unpriv-setup.
type unprivFlags struct{ user, store string }

func (f *unprivFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.user, "user", os.Getenv("SUDO_USER"), "the `user` who will build without root (default: $SUDO_USER)")
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder` to create for the user: the default is the default store of a build run in the current folder (empty: none)")
}

// cmdUnprivSetup gives a user what builds without root need.
func cmdUnprivSetup(args []string) error {
	fs := newFlagSet("unpriv-setup")
	var f unprivFlags
	f.register(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if f.user == "" {
		return cmdline.UsageError{Err: errors.New("which user? strata unpriv-setup --user NAME")}
	}
	return host.UnprivSetup(f.user, f.store, os.Stdout)
}
