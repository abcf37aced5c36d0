package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/mount"
)

// cleanFlags are the flags of strata clean.
type cleanFlags struct {
	store, layout string
	noWait        bool
}

func (f *cleanFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder`")
	fs.StringVar(&f.layout, "layout", strata.DefaultLayout(), "output OCI layout `folder`")
	fs.BoolVar(&f.noWait, "no-wait", false, "fail at once when a build holds the store")
}

// cmdClean removes the store and the output layout. Builds make no mounts
// in the host's mount namespace; strata mount does, on blobs and folders
// of the store, so clean refuses while one is recorded. The store is
// locked first so a running build is not pulled from under its feet.
func cmdClean(ctx context.Context, args []string) error {
	fs := newFlagSet("clean")
	var f cleanFlags
	f.register(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(f.store); err == nil {
		st, err := runtime.OpenStore(ctx, f.store, storage.OpenOptions{NoWait: f.noWait, Log: os.Stderr})
		if err != nil {
			return err
		}
		if dirs, err := mount.Active(st.Root); err != nil || len(dirs) > 0 {
			st.Close()
			if err != nil {
				return err
			}
			return fmt.Errorf("store %s holds the layers of strata mounts on %s: strata umount them first", f.store, strings.Join(dirs, ", "))
		}
		err = st.Destroy()
		if err != nil {
			return err
		}
		fmt.Printf("removed store %s\n", f.store)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := os.Stat(f.layout); err == nil {
		if err := os.RemoveAll(f.layout); err != nil {
			return err
		}
		fmt.Printf("removed layout %s\n", f.layout)
	}
	return nil
}
