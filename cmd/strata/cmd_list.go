package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/cmdline"
)

// cmdList prints the images of the definitions with their doc comments.
func cmdList(ctx context.Context, args []string, load loader) error {
	fs := newFlagSet("list")
	// Accepted like every command that runs the definitions: a doc
	// comment cannot depend on them, but the same command line with
	// "list" in place of "build" must work.
	var p strata.ParamFlags
	p.Register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	patterns, names := splitPatterns(pos)
	if len(names) > 0 {
		return cmdline.UsageError{Err: fmt.Errorf("list takes package folders (./images, ./...), not image names: %s", strings.Join(names, " "))}
	}
	targets, err := load.load(ctx, "list", patterns)
	if err != nil {
		return err
	}
	// Two packages may export one image (a re-exported base): list it once.
	var sorted []strata.Target
	seen := map[string]bool{}
	for _, t := range targets {
		if !seen[t.Image.Name()] {
			seen[t.Image.Name()] = true
			sorted = append(sorted, t)
		}
	}
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Image.Name() < sorted[b].Image.Name() })
	width := 0
	for _, t := range sorted {
		width = max(width, len(t.Image.Name()))
	}
	for _, t := range sorted {
		doc := t.Doc
		if t.Image.IsBuildOnly() {
			doc = strings.TrimSpace(doc + " (build-only)")
		}
		fmt.Printf("%-*s  %s\n", width, t.Image.Name(), doc)
	}
	return nil
}
