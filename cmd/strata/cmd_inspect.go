package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/internal/sbom"
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
// (digest, size, media type), annotations, the image config and the SBOMs
// stored as its referrers.
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
		sboms, err := imageSBOMs(ctx, l, desc)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if f.json {
			v := map[string]any{"tag": name, "digest": desc.Digest, "manifest": m, "config": cfg}
			if len(sboms) > 0 {
				v["sboms"] = sboms
			}
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Println(string(b))
			continue
		}
		if i > 0 {
			fmt.Println()
		}
		printImage(name, desc, m, cfg)
		for _, s := range sboms {
			fmt.Printf("  sbom: %s  %s, %d packages (%s)\n", s.Digest, s.Format, s.Packages, bytesize.Format(s.Size))
		}
	}
	return nil
}

// sbomInfo is what inspect says of an SBOM referrer of an image.
type sbomInfo struct {
	// Digest is the artifact manifest's, the one a registry lists among
	// the image's referrers.
	Digest   digest.Digest `json:"digest"`
	Format   string        `json:"format"`
	Packages int           `json:"packages"`
	// Size is the document's.
	Size int64 `json:"size"`
}

// imageSBOMs reads the SBOMs the layout holds as referrers of desc.
func imageSBOMs(ctx context.Context, l *storage.Layout, desc v1.Descriptor) ([]sbomInfo, error) {
	refs, err := l.Referrers(ctx, desc.Digest, sbom.MediaType)
	if err != nil {
		return nil, err
	}
	var out []sbomInfo
	for _, r := range refs {
		var m v1.Manifest
		if err := l.ReadJSON(ctx, r.Digest, &m); err != nil {
			return nil, fmt.Errorf("SBOM %s: %w", r.Digest, err)
		}
		if len(m.Layers) != 1 {
			return nil, fmt.Errorf("SBOM %s: %d layers, want 1", r.Digest, len(m.Layers))
		}
		doc, err := l.ReadBlob(ctx, m.Layers[0].Digest)
		if err != nil {
			return nil, fmt.Errorf("SBOM %s: %w", r.Digest, err)
		}
		n, err := sbom.Count(doc)
		if err != nil {
			return nil, fmt.Errorf("SBOM %s: %w", r.Digest, err)
		}
		out = append(out, sbomInfo{Digest: r.Digest, Format: "SPDX 2.3 JSON", Packages: n, Size: m.Layers[0].Size})
	}
	return out, nil
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
