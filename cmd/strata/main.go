// Command strata builds OCI images from image definitions written in Go.
//
// Commands that need the definitions (build, list, graph, publish, grab,
// chroot) compile each definitions package into a small cached driver that
// links only the definitions and strata's dsl package, run it to receive
// the definitions in a serialized form (dsl.ReadDefinitions), and build
// them here. The other commands need no definitions.
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
	"strings"
	"syscall"
	"time"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/driver"
)

func main() {
	args := os.Args[1:]
	if len(args) >= 2 && (args[0] == "-C" || args[0] == "--C") {
		if err := os.Chdir(args[1]); err != nil {
			fmt.Fprintf(os.Stderr, "strata: %v\n", err)
			os.Exit(2)
		}
		args = args[2:]
	}
	if len(args) > 0 {
		// Package-level definitions read build parameters while their
		// driver initialises, before any flag is parsed: hand them over
		// in STRATA_PARAMS, which this process's evaluation reads too.
		if err := strata.ExportParams(args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "strata %s: %v\n", args[0], err)
			os.Exit(2)
		}
	}
	os.Exit(strata.Command(context.Background(), args, load))
}

// load compiles (or finds in the cache) the driver of each definitions
// package that patterns name, runs it and returns the targets of all.
func load(ctx context.Context, patterns []string) ([]strata.Target, error) {
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
				continue // ./... matches every package; only some hold definitions
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

// loadDir prepares and runs the driver of the definitions package in dir.
func loadDir(ctx context.Context, dir string) ([]strata.Target, error) {
	// Ctrl-C during a compile stops the go command and removes its
	// temporary files.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	d, err := driver.Prepare(ctx, driver.Options{Dir: dir, Stderr: os.Stderr})
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
	raw, err := d.Run(ctx, os.Environ(), os.Stderr)
	if err != nil {
		return nil, err
	}
	defs, err := dsl.ReadDefinitions(bytes.NewReader(raw))
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
