package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
)

// grabFlags are the flags of strata grab.
type grabFlags struct {
	store, layout string
	keepSpecial   bool
	param         strata.ParamFlags
}

func (f *grabFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder`")
	fs.StringVar(&f.layout, "layout", strata.DefaultLayout(), "OCI layout `folder` for images that are not in the definitions")
	fs.BoolVar(&f.keepSpecial, "keep-special", false, "keep set-user-id and set-group-id bits and copy device nodes (as root); by default they are dropped and left out, as an image is not to be trusted with the host")
	f.param.Register(fs)
}

// cmdGrab copies a file or folder out of a built image: an image of the
// definitions (build-only ones included) is read from its committed layer
// folders in the store, any other name from its tag in the output layout.
func cmdGrab(ctx context.Context, args []string, load loader) error {
	fs := newFlagSet("grab")
	var f grabFlags
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
	if len(pos) < 1 || len(pos) > 2 {
		return cmdline.UsageError{Err: errors.New("want NAME:/path [DEST]")}
	}
	name, src, ok := strings.Cut(pos[0], ":")
	if !ok || name == "" || !path.IsAbs(src) {
		return cmdline.UsageError{Err: fmt.Errorf("%q: want NAME:/absolute/path", pos[0])}
	}
	dest, err := grabDest(src, pos[1:])
	if err != nil {
		return err
	}
	// The definitions are compiled and evaluated before the store is
	// opened: its lock would keep builds waiting through the compile.
	targets, err := load.loadOptional(ctx, patterns)
	if err != nil {
		return err
	}
	n, err := definedNode(ctx, targets, name, params)
	if err != nil {
		return err
	}
	if n != nil {
		if _, err := os.Stat(f.store); err != nil {
			return fmt.Errorf("no store at %s: build %s first", f.store, name)
		}
	}
	st, err := runtime.OpenStore(ctx, f.store, storage.OpenOptions{Log: os.Stderr})
	if err != nil {
		return err
	}
	defer st.Close()
	if n != nil {
		dirs, err := runtime.LayerDirs(ctx, st, n)
		if err != nil {
			return err
		}
		if err := storage.ExtractDirs(ctx, dirs, src, dest, storage.ExtractOptions{Special: f.keepSpecial, Log: os.Stderr}); err != nil {
			return fmt.Errorf("image %q: %w", name, err)
		}
		return nil
	}
	if _, err := os.Stat(f.layout); err != nil {
		return fmt.Errorf("no image named %q in the definitions, and no OCI layout at %s", name, f.layout)
	}
	img, err := st.ImportLayout(ctx, f.layout, name)
	if err != nil {
		return err
	}
	if err := st.Extract(ctx, img.Manifest.Layers, src, dest, storage.ExtractOptions{Special: f.keepSpecial, Log: os.Stderr}); err != nil {
		return fmt.Errorf("image %q: %w", name, err)
	}
	return nil
}

// grabDest is where grab writes, as cp would: DEST, or DEST/BASE when DEST
// is an existing folder, or ./BASE without DEST.
func grabDest(src string, rest []string) (string, error) {
	base := path.Base(path.Clean(src))
	if len(rest) == 0 {
		if base == "/" {
			return "", cmdline.UsageError{Err: errors.New("grabbing / needs a DEST folder")}
		}
		return base, nil
	}
	dest := rest[0]
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() && base != "/" {
		return filepath.Join(dest, base), nil
	}
	return dest, nil
}

// definedNode returns the node of the definitions named name, or nil when
// no definition has that name.
func definedNode(ctx context.Context, targets []strata.Target, name string, params map[string]string) (*dsl.Node, error) {
	if targets == nil {
		return nil, nil
	}
	g, err := evaluate(ctx, strata.Options{Params: params}, targets)
	if err != nil {
		return nil, err
	}
	return g.Node(name), nil
}
