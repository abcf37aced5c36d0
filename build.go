package strata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/internal/digestcache"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/runtime/display"
	"github.com/strata-build/strata/runtime/host"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
	"github.com/strata-build/strata/storage/regcache"
)

// BuildWith builds images (and everything they need) with opts and returns
// one result per image built or found in the cache.
func BuildWith(ctx context.Context, opts Options, images ...*dsl.Image) ([]runtime.Result, error) {
	g, err := Evaluate(ctx, opts, images...)
	if err != nil {
		return nil, err
	}
	return BuildGraph(ctx, opts, g)
}

// Evaluate turns images, and everything they need, into the validated
// build graph BuildGraph, Plan and PublishGraph take: every node with its
// cache key, with opts' parameters and layer types. It runs nothing; ctx
// bounds the registry and download requests that tags and unpinned URLs
// need.
func Evaluate(ctx context.Context, opts Options, images ...*dsl.Image) (*dsl.Graph, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	epoch, err := runtime.EpochFromEnv()
	if err != nil {
		return nil, err
	}
	params, resolver, err := opts.sources()
	if err != nil {
		return nil, err
	}
	digests := digestcache.Default()
	g, err := dsl.Evaluate(ctx, images, dsl.Options{SourceDateEpoch: epoch, LayerTypes: opts.LayerTypes,
		Params: params, Resolver: resolver, AllowUnpinnedURLs: opts.AllowUnpinnedURLs, Digests: digests})
	if err != nil {
		return nil, err
	}
	// A cache that cannot be written costs the next build a read, no more.
	_ = digests.Save()
	return g, nil
}

// BuildGraph builds the named images of g (all when none) and what they
// need, as `strata build` does: it checks the machine first, prints a
// result table and a summary to opts.Out, tags what it built in the output
// layout, and returns one result per image. With opts.DryRun it prints
// what it would do instead.
func BuildGraph(ctx context.Context, opts Options, g *dsl.Graph, names ...string) ([]runtime.Result, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return nil, dryRun(ctx, opts, g, names)
	}
	// What the build needs of this machine, before any work.
	if err := preflight(ctx, opts); err != nil {
		return nil, err
	}
	nodes, err := g.Select(names...)
	if err != nil {
		return nil, err
	}
	epoch, err := runtime.EpochFromEnv()
	if err != nil {
		return nil, err
	}
	st, err := runtime.OpenStore(ctx, opts.Store, storage.OpenOptions{NoWait: opts.NoWait, Log: opts.Out})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out, err := storage.OpenLayout(opts.Layout)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	caches, live, logOut, err := opts.sharing()
	if err != nil {
		return nil, err
	}
	backend, err := runtime.OpenBackend(ctx, opts.Backend)
	if err != nil {
		return nil, err
	}
	if backend != nil {
		defer backend.Close()
		if opts.ShellOnFailure {
			return nil, fmt.Errorf("--shell-on-failure opens a shell in a local step's container; with --backend %s the steps run elsewhere", opts.Backend)
		}
	}
	start := time.Now()
	results, err := runtime.Build(ctx, nodes, runtime.Options{
		Backend:         backend,
		Store:           st,
		Layout:          out,
		Out:             logOut,
		RegistryCache:   caches,
		Progress:        live,
		NoCache:         opts.NoCache,
		NoVerity:        opts.NoVerity,
		NoSBOM:          opts.NoSBOM,
		SquashfsWriter:  opts.SquashfsWriter,
		Jobs:            opts.Jobs,
		FailFast:        opts.FailFast,
		SourceDateEpoch: epoch,
		Annotations:     annotations(),
		ShellOnFailure:  opts.ShellOnFailure,
		Registry:        opts.Registry,
	})
	live.Close()
	resultTable(opts.Out, results, st.Root)
	summary(opts.Out, results, time.Since(start))
	// Tags moved by the images that were built lost their old blobs, even
	// when another image failed: collect them now, since a later build
	// collects only if it moves a tag itself (an interrupted build leaves
	// them until then).
	if ctx.Err() == nil {
		if gcErr := out.GC(ctx); gcErr != nil && err == nil {
			err = fmt.Errorf("collect unreferenced blobs of %s: %w", opts.Layout, gcErr)
		}
	}
	return results, err
}

func annotations() map[string]string {
	a := map[string]string{"dev.strata.version": Version}
	// strata's own module version, not the main module's: under go tool
	// strata the main module is the user's. A checkout keeps Version, so
	// manifests do not change with every commit of strata.
	if v := dsl.ModuleVersion(); v != "(devel)" {
		a["dev.strata.version"] = v
	}
	if rev := gitRevision("."); rev != "" {
		a[annotationRevision] = rev
	}
	return a
}

func summary(w io.Writer, results []runtime.Result, took time.Duration) {
	var failed []runtime.Result
	counts := map[runtime.Status]int{}
	for _, r := range results {
		counts[r.Status]++
		if r.Status == runtime.Failed {
			failed = append(failed, r)
		}
	}
	for _, r := range failed {
		var sf *runtime.StepFailure
		if errors.As(r.Err, &sf) && len(sf.Tail) > 0 {
			fmt.Fprintf(w, "--- last lines of %s:\n", r.Name)
			for _, l := range sf.Tail {
				fmt.Fprintf(w, "%s | %s\n", r.Name, l)
			}
		}
		fmt.Fprintf(w, "FAILED %s: %v\n", r.Name, r.Err)
	}
	for _, r := range results {
		if r.Status == runtime.Skipped {
			fmt.Fprintf(w, "SKIPPED %s: %s\n", r.Name, r.Reason)
		}
	}
	var parts []string
	for _, s := range []runtime.Status{runtime.Built, runtime.Cached, runtime.Failed, runtime.Skipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "%s in %s\n", strings.Join(parts, ", "), took.Round(time.Millisecond))
}

// sharing sets up what Options ask for beyond the store: the registry
// caches and, on a terminal, the live display. out is where the build log
// goes (the display when there is one); done stops the display before the
// summary is printed.
func (o Options) sharing() (caches runtime.RegistryCache, live *display.Display, out io.Writer, err error) {
	for _, r := range o.CacheFrom {
		c, err := regcache.New(r, o.Registry)
		if err != nil {
			return caches, nil, nil, fmt.Errorf("--cache-from: %w", err)
		}
		caches.CacheFrom = append(caches.CacheFrom, c)
	}
	if o.CacheTo != "" {
		if caches.CacheTo, err = regcache.New(o.CacheTo, o.Registry); err != nil {
			return caches, nil, nil, fmt.Errorf("--cache-to: %w", err)
		}
	}
	live = o.display()
	if live != nil {
		return caches, live, live, nil
	}
	return caches, nil, o.Out, nil
}

// display returns a live display when Progress asks for one (or is auto
// and Out is a terminal), nil for plain lines.
func (o Options) display() *display.Display {
	f, ok := o.Out.(*os.File)
	if !ok || o.Progress == "plain" {
		return nil
	}
	if o.Progress == "tty" || display.IsTerminal(f) {
		return display.New(f)
	}
	return nil
}

// resultTable prints one row per image: how it ended, how long it took and
// the size of its layer (first layer type); after a failure, where the
// full logs are.
func resultTable(w io.Writer, results []runtime.Result, storeRoot string) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tRESULT\tTIME\tLAYER")
	failed := ""
	for _, r := range results {
		size := "-"
		if r.Record != nil && r.Record.Empty {
			size = "empty"
		} else if r.Record != nil && len(r.Record.Layers) > 0 {
			size = bytesize.Format(r.Record.Layers[0].Descriptor.Size)
		}
		if r.Status == runtime.Failed {
			failed = r.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Status, r.Duration.Round(time.Millisecond), size)
	}
	tw.Flush()
	if failed != "" {
		log := runtime.LogPath(storeRoot, failed)
		fmt.Fprintf(w, "full build logs: %s/ (e.g. %s)\n", filepath.Dir(log), log)
	}
}

// preflight runs the checks a build with opts needs and stops it, before
// it does any work, when one fails.
func preflight(ctx context.Context, opts Options) error {
	return host.Preflight(ctx, host.CheckOptions{
		Store:    opts.Store,
		Squashfs: slices.Contains(opts.LayerTypes, dsl.Squashfs) && opts.SquashfsWriter == layer.SquashfsMksquashfs,
		Erofs:    slices.Contains(opts.LayerTypes, dsl.Erofs),
	})
}
