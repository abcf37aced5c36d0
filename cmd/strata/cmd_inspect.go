package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage"
)

// inspectFlags are the flags of strata inspect.
type inspectFlags struct {
	layout string
	json   bool
}

func (f *inspectFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.layout, "layout", strata.DefaultLayout(), "OCI layout `folder`")
	fs.BoolVar(&f.json, "json", false, "print manifest and config as JSON")
}

// cmdInspect prints what the layout holds for one or every tag: layers
// (digest, size, media type), annotations and the image config.
func cmdInspect(ctx context.Context, args []string) error {
	fs := newFlagSet("inspect")
	var f inspectFlags
	f.register(fs)
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	if _, err := os.Stat(f.layout); err != nil {
		return fmt.Errorf("no OCI layout at %s: build first, or pass --layout", f.layout)
	}
	l, err := storage.OpenLayout(f.layout)
	if err != nil {
		return err
	}
	defer l.Close()
	if len(names) == 0 {
		names, err = l.Tags(ctx)
		if err != nil {
			return err
		}
	}
	for i, name := range names {
		desc, err := l.Resolve(ctx, name)
		if err != nil {
			return err
		}
		var m v1.Manifest
		var cfg v1.Image
		if err := l.ReadJSON(ctx, desc.Digest, &m); err != nil {
			return fmt.Errorf("%s: manifest: %w", name, err)
		}
		if err := l.ReadJSON(ctx, m.Config.Digest, &cfg); err != nil {
			return fmt.Errorf("%s: config: %w", name, err)
		}
		if f.json {
			b, _ := json.MarshalIndent(map[string]any{"tag": name, "digest": desc.Digest, "manifest": m, "config": cfg}, "", "  ")
			fmt.Println(string(b))
			continue
		}
		if i > 0 {
			fmt.Println()
		}
		printImage(name, desc, m, cfg)
	}
	return nil
}

func printImage(name string, desc v1.Descriptor, m v1.Manifest, cfg v1.Image) {
	fmt.Printf("%s  %s\n", name, desc.Digest)
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  layer\tsize\tmedia type\tdm-verity root hash")
	for _, l := range m.Layers {
		root, _ := verity.RootHash(l.Annotations)
		if root == "" {
			root = "-"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", l.Digest, bytesize.Format(l.Size), l.MediaType, root)
	}
	w.Flush()
	printMap("annotations", m.Annotations)
	c := cfg.Config
	fmt.Println("  config:")
	if len(c.Entrypoint) > 0 {
		fmt.Printf("    entrypoint: %q\n", c.Entrypoint)
	}
	if len(c.Cmd) > 0 {
		fmt.Printf("    cmd: %q\n", c.Cmd)
	}
	for _, e := range c.Env {
		fmt.Printf("    env: %s\n", e)
	}
	if c.WorkingDir != "" {
		fmt.Printf("    workdir: %s\n", c.WorkingDir)
	}
	if c.User != "" {
		fmt.Printf("    user: %s\n", c.User)
	}
	printMap("labels", c.Labels)
	if cfg.Created != nil {
		fmt.Printf("  created: %s\n", cfg.Created.UTC().Format("2006-01-02T15:04:05Z"))
	}
}

func printMap(title string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	fmt.Printf("  %s:\n", title)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("    %s=%s\n", k, m[k])
	}
}
