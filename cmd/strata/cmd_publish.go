package main

import (
	"context"
	"errors"
	"flag"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/cmdline"
)

// publishFlags are the flags of strata publish: those of a build (for
// --build, and to compute the same cache keys) and its own.
type publishFlags struct {
	build   strata.BuildFlags
	to      string
	tags    cmdline.Strings
	doBuild bool
	dryRun  bool
}

func (f *publishFlags) register(fs *flag.FlagSet) {
	f.build.RegisterShared(fs)
	fs.StringVar(&f.to, "to", "", "where to publish: `REGISTRY/PREFIX` (as PREFIX/NAME:TAG) or oci:PATH (a local OCI layout)")
	fs.Var(&f.tags, "tag", "`tag` to publish under, repeatable (default: the image's own tags, else latest)")
	fs.BoolVar(&f.doBuild, "build", false, "build images that are not built or are stale first")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print what would be published where, and publish nothing")
}

// cmdPublish pushes built images to a registry or a local layout.
func cmdPublish(ctx context.Context, args []string, load loader) error {
	fs := newFlagSet("publish")
	var f publishFlags
	f.register(fs)
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts, err := f.build.Options()
	if err != nil {
		return err
	}
	if f.to == "" {
		return cmdline.UsageError{Err: errors.New("--to REGISTRY/PREFIX or --to oci:PATH is required")}
	}
	if opts.NoCache && !f.doBuild {
		return cmdline.UsageError{Err: errors.New("--no-cache rebuilds images: publish builds nothing without --build")}
	}
	opts.DryRun = f.dryRun
	popts := strata.PublishOptions{Options: opts, To: f.to, Tags: f.tags, Build: f.doBuild}
	if err := popts.Validate(); err != nil {
		return err
	}
	patterns, names := splitPatterns(names)
	targets, err := load.load(ctx, "publish", patterns)
	if err != nil {
		return err
	}
	g, err := evaluate(ctx, opts, targets)
	if err != nil {
		return err
	}
	return strata.PublishGraph(ctx, popts, g, names...)
}
