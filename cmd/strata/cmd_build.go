package main

import (
	"context"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/timings"
)

// cmdBuild builds the named images of the definitions (all when none).
func cmdBuild(ctx context.Context, args []string, load loader) error {
	fs := newFlagSet("build")
	var bf strata.BuildFlags
	bf.Register(fs)
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts, err := bf.Options()
	if err != nil {
		return err
	}
	patterns, names := splitPatterns(names)
	done := timings.Phase("load definitions")
	targets, err := load.load(ctx, "build", patterns)
	done()
	if err != nil {
		return err
	}
	g, err := evaluate(ctx, opts, targets)
	if err != nil {
		return err
	}
	done = timings.Phase("build (engine)")
	_, err = strata.BuildGraph(ctx, opts, g, names...)
	done()
	return err
}
