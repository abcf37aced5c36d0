package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/driver"
	"github.com/strata-build/strata/internal/timings"
)

// loader compiles and runs the definitions packages that patterns name
// (the package in the working directory when there are none) and returns
// their targets: main passes loadPackages, tests of the command line nil.
// A pattern is a folder ("./images", "../defs") or a folder and everything
// under it ("./...", "./images/..."), as the go command reads them.
type loader func(ctx context.Context, patterns []string) ([]strata.Target, error)

// splitPatterns separates package patterns from image names among a
// command's positional arguments.
func splitPatterns(args []string) (patterns, names []string) {
	for _, a := range args {
		if cmdline.IsPackagePattern(a) {
			patterns = append(patterns, a)
		} else {
			names = append(names, a)
		}
	}
	return patterns, names
}

// load returns the targets of patterns, or a usage error naming the
// command when this program cannot load definitions.
func (l loader) load(ctx context.Context, cmd string, patterns []string) ([]strata.Target, error) {
	if l == nil {
		return nil, cmdline.UsageError{Err: errors.New("no definitions: run strata " + cmd + " in the folder of your definitions package")}
	}
	return l(ctx, patterns)
}

// leadingPatterns splits the package patterns that come first among a
// command's positional arguments (strata chroot ./images NAME) from the
// rest, which may hold anything after them (a command in the image).
func leadingPatterns(pos []string) (patterns, rest []string) {
	for len(pos) > 0 && pos[0] != "--" && cmdline.IsPackagePattern(pos[0]) {
		patterns, pos = append(patterns, pos[0]), pos[1:]
	}
	return patterns, pos
}

// loadOptional is load for commands that also work on images the
// definitions do not hold (grab): a folder without definitions gives none.
func (l loader) loadOptional(ctx context.Context, patterns []string) ([]strata.Target, error) {
	if l == nil {
		return nil, nil
	}
	targets, err := l(ctx, patterns)
	if len(patterns) == 0 && errors.Is(err, driver.ErrNoDefinitions) {
		return nil, nil
	}
	return targets, err
}

// loadPackages compiles (or finds in the cache) the driver of each
// definitions package that patterns name, runs it and returns the targets
// of all.
func loadPackages(ctx context.Context, patterns []string) ([]strata.Target, error) {
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	var targets []strata.Target
	for _, p := range patterns {
		dirs, all, err := expand(p)
		if err != nil {
			return nil, err
		}
		found := 0
		for _, dir := range dirs {
			ts, err := loadDir(ctx, dir)
			if all && (errors.Is(err, driver.ErrNoDefinitions) || errors.Is(err, driver.ErrMainPackage)) {
				// ./... matches every package; only some hold
				// definitions. A skipped package's unsure variables
				// are likely meant as targets: never drop them
				// silently.
				var nd *driver.NoDefinitionsError
				if errors.As(err, &nd) {
					for _, w := range nd.Warnings {
						fmt.Fprintf(os.Stderr, "strata: warning: %s\n", w)
					}
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			found++
			targets = append(targets, ts...)
		}
		if found == 0 {
			return nil, fmt.Errorf("%w in any package matching %s", driver.ErrNoDefinitions, p)
		}
	}
	return targets, nil
}

// expand turns a pattern into folders: "dir" is itself, "dir/..." is dir
// and every folder under it that the go command would match (not hidden,
// not _-prefixed, not testdata or vendor, not another module).
func expand(pattern string) (dirs []string, all bool, err error) {
	root, all := strings.CutSuffix(pattern, "...")
	if !all {
		return []string{pattern}, false, nil
	}
	root = strings.TrimSuffix(root, "/")
	if root == "" {
		root = "."
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != root {
			name := d.Name()
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			if _, err := os.Stat(filepath.Join(p, "oci-layout")); err == nil {
				return filepath.SkipDir // an OCI layout: no Go, many blobs
			}
		}
		if gos, _ := filepath.Glob(filepath.Join(p, "*.go")); len(gos) > 0 {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", pattern, err)
	}
	return dirs, true, nil
}

// noDefinitionsCacheEnv, set to anything, makes every command run the
// definitions' driver rather than reuse the document an earlier run wrote
// (driver.Driver.Definitions says when that is reused).
const noDefinitionsCacheEnv = "STRATA_NO_DEFINITIONS_CACHE"

// loadDir prepares and runs the driver of the definitions package in dir.
func loadDir(ctx context.Context, dir string) ([]strata.Target, error) {
	// Ctrl-C during a compile stops the go command and removes its
	// temporary files.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	done := timings.Phase("driver: prepare")
	d, err := driver.Prepare(ctx, driver.Options{Dir: dir, Stderr: os.Stderr})
	done()
	if err != nil {
		return nil, err
	}
	if d.Compiled {
		// Said only when the compiler ran, so a slow start is explained
		// and a fast one stays silent.
		fmt.Fprintf(os.Stderr, "strata: compiled definitions %s in %s\n", d.Package, time.Since(start).Round(time.Millisecond))
	}
	// Variables the scan could not tell are images: said at every run, so
	// a target is never dropped silently.
	for _, w := range d.Warnings {
		fmt.Fprintf(os.Stderr, "strata: warning: %s\n", w)
	}
	reuse := os.Getenv(noDefinitionsCacheEnv) == ""
	// The driver's environment is the key of the definitions it writes:
	// asking for timings must not be what changes it.
	env := slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, timings.Env+"=") })
	ran := time.Now()
	raw, cached, err := d.Definitions(ctx, env, os.Stderr, reuse)
	if timings.Enabled() {
		phase := "definitions: reused"
		switch {
		case !cached && !reuse:
			phase = "driver: run (" + noDefinitionsCacheEnv + " set)"
		case !cached && d.NotReusable != "":
			phase = "driver: run (never reused: " + d.NotReusable + ")"
		case !cached:
			phase = "driver: run"
		}
		timings.Record(phase, time.Since(ran))
	}
	if err != nil {
		return nil, err
	}
	done = timings.Phase("definitions: read")
	defs, err := dsl.ReadDefinitions(bytes.NewReader(raw))
	done()
	if err != nil {
		return nil, err
	}
	for _, t := range defs.Targets {
		if t.Image == nil {
			return nil, fmt.Errorf("%s.%s is a nil *dsl.Image", defs.Package, t.Var)
		}
	}
	return defs.Targets, nil
}

// evaluate evaluates the definitions a loader returned, as strata.Evaluate
// does a Go caller's images.
func evaluate(ctx context.Context, opts strata.Options, targets []strata.Target) (*dsl.Graph, error) {
	images := make([]*dsl.Image, len(targets))
	for n, t := range targets {
		images[n] = t.Image
	}
	defer timings.Phase("evaluate")()
	return strata.Evaluate(ctx, opts, images...)
}
