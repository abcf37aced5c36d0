package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/runtime"
)

// graphFlags are the flags of strata graph.
type graphFlags struct {
	opts  strata.Options
	types cmdline.Strings
	dot   bool
	param strata.ParamFlags
}

func (f *graphFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.dot, "dot", false, "print Graphviz DOT instead of text")
	fs.StringVar(&f.opts.Store, "store", strata.DefaultStore(), "store `folder` to look for cached images in")
	fs.BoolVar(&f.opts.NoCache, "no-cache", false, "plan as strata build --no-cache would")
	fs.BoolVar(&f.opts.NoWait, "no-wait", false, "fail at once when a build holds the store")
	fs.Var(&f.types, "layer-type", "layer `type` the build would use: tar+gzip (default), tar+zstd or squashfs; repeat for several")
	f.param.Register(fs)
}

// cmdGraph prints the build graph of the named images (all when none):
// what each needs, whether the store has it, and why it would be rebuilt.
func cmdGraph(ctx context.Context, args []string, load loader) error {
	fs := newFlagSet("graph")
	var f graphFlags
	f.register(fs)
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts, types := f.opts, f.types
	if opts.Params, err = f.param.Params(); err != nil {
		return err
	}
	for _, s := range types {
		t, err := layertype.Parse(s)
		if err != nil {
			return cmdline.UsageError{Err: err}
		}
		opts.LayerTypes = append(opts.LayerTypes, t)
	}
	patterns, names := splitPatterns(names)
	targets, err := load.load(ctx, "graph", patterns)
	if err != nil {
		return err
	}
	g, err := evaluate(ctx, opts, targets)
	if err != nil {
		return err
	}
	plan, err := strata.Plan(ctx, opts, g, names...)
	if err != nil {
		return err
	}
	if f.dot {
		writeDOT(os.Stdout, plan)
		return nil
	}
	writeGraphText(os.Stdout, plan)
	return nil
}

func writeGraphText(w io.Writer, plan []runtime.PlanItem) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tFROM\tIMPORTS FROM\tSTATE")
	for _, it := range plan {
		n := it.Node
		from := "-"
		switch {
		case n.Parent != nil:
			from = n.Parent.Name
		case n.Base != nil:
			from = baseName(n.Base)
		}
		var imports []string
		for _, d := range importDeps(n) {
			imports = append(imports, d.Name)
		}
		imp := strings.Join(imports, ",")
		if imp == "" {
			imp = "-"
		}
		name := n.Name
		if n.Image.IsBuildOnly() {
			name += " (build-only)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, from, imp, it.String())
	}
	tw.Flush()
}

// writeDOT prints the graph for Graphviz: an edge from each image to what
// it needs (solid: its base, dashed: an image it imports from), cached
// images filled green, images that would run orange, with the reason.
func writeDOT(w io.Writer, plan []runtime.PlanItem) {
	fmt.Fprintln(w, "digraph strata {")
	fmt.Fprintln(w, "\trankdir=BT;")
	fmt.Fprintln(w, "\tnode [shape=box, style=filled, fontname=\"sans-serif\"];")
	for _, it := range plan {
		n := it.Node
		color := map[runtime.Action]string{runtime.Reuse: "palegreen", runtime.Encode: "lightblue", runtime.RunSteps: "orange"}[it.Action]
		shape := ""
		if n.Image.IsBuildOnly() {
			shape = ", peripheries=2"
		}
		fmt.Fprintf(w, "\t%q [label=%q, fillcolor=%s%s];\n", n.Name, n.Name+"\n"+it.String(), color, shape)
		if n.Parent == nil && n.Base != nil {
			base := baseName(n.Base)
			fmt.Fprintf(w, "\t%q [shape=ellipse, style=dashed];\n", base)
			fmt.Fprintf(w, "\t%q -> %q;\n", n.Name, base)
		}
		if n.Parent != nil {
			fmt.Fprintf(w, "\t%q -> %q;\n", n.Name, n.Parent.Name)
		}
		for _, d := range importDeps(n) {
			fmt.Fprintf(w, "\t%q -> %q [style=dashed, label=\"import\"];\n", n.Name, d.Name)
		}
	}
	fmt.Fprintln(w, "}")
}

// importDeps are the images n imports files from, each once, in the order
// of n's dependencies.
func importDeps(n *dsl.Node) []*dsl.Node {
	var out []*dsl.Node
	for _, d := range n.Deps {
		if d == n.Parent {
			continue
		}
		seen := false
		for _, o := range out {
			seen = seen || o == d
		}
		if !seen {
			out = append(out, d)
		}
	}
	return out
}

// baseName names an external base for people: "scratch", "oci:PATH:TAG".
func baseName(b dsl.Base) string {
	switch b := b.(type) {
	case *dsl.LayoutBase:
		return "oci:" + b.Path + ":" + b.Tag
	case *dsl.PullBase:
		return "docker://" + b.Ref
	case *dsl.TarballBase:
		if b.URL != "" {
			return "tarball " + b.URL
		}
		return "tarball " + b.Path
	}
	return "scratch" // the one base type dsl does not export
}
