package strata

import (
	"context"
	"errors"

	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/driver"
)

// Loader compiles and runs the definitions packages that patterns name
// (the package in the working directory when there are none) and returns
// their targets. The strata CLI passes one to Command; a pattern is a
// folder ("./images", "../defs") or a folder and everything under it
// ("./...", "./images/..."), as the go command reads them.
type Loader func(ctx context.Context, patterns []string) ([]Target, error)

// ErrNoDefinitions is wrapped by a Loader's error when a folder holds no
// exported *dsl.Image variables.
var ErrNoDefinitions = driver.ErrNoDefinitions

// IsPackagePattern reports whether a command-line argument names Go
// packages rather than an image: image names never start with "." or "/"
// and never hold a "/".
func IsPackagePattern(arg string) bool { return cmdline.IsPackagePattern(arg) }

// splitPatterns separates package patterns from image names among a
// command's positional arguments.
func splitPatterns(args []string) (patterns, names []string) {
	for _, a := range args {
		if IsPackagePattern(a) {
			patterns = append(patterns, a)
		} else {
			names = append(names, a)
		}
	}
	return patterns, names
}

// load returns the targets of patterns, or a usage error naming the
// command when this program cannot load definitions.
func (l Loader) load(ctx context.Context, cmd string, patterns []string) ([]Target, error) {
	if l == nil {
		return nil, cmdline.UsageError{Err: errors.New("no definitions: run strata " + cmd + " in the folder of your definitions package")}
	}
	return l(ctx, patterns)
}

// loadOptional is load for commands that also work on images the
// definitions do not hold (grab): a folder without definitions gives none.
func (l Loader) loadOptional(ctx context.Context, cmd string) ([]Target, error) {
	if l == nil {
		return nil, nil
	}
	targets, err := l(ctx, nil)
	if errors.Is(err, ErrNoDefinitions) {
		return nil, nil
	}
	return targets, err
}
