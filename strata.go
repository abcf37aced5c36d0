// Package strata is the entry point for builds driven from Go: a magefile
// calls Build, and the strata CLI (cmd/strata) runs its commands through
// Command.
//
//	func Build(ctx context.Context) error { return strata.Build(ctx, images.App) }
package strata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
	"github.com/strata-build/strata/storage/registry"
)

// Version is the version written into manifests by a strata built from a
// checkout; a released module writes its module version (ModuleVersion).
var Version = "0.1.0-dev"

// Target is one exported definition of a definitions package, as the
// strata CLI receives them from its driver.
type Target = dsl.Target

// Options configure a build. The zero value builds into .strata and oci
// at the root of the Go module holding the working directory, with tar+gzip
// layers.
type Options struct {
	// Store is the store folder (default: .strata at the root of the Go
	// module holding the working directory; see DefaultStore).
	Store string
	// Layout is the output OCI layout folder (default: oci at the module
	// root; see DefaultLayout).
	Layout string
	// NoCache rebuilds every selected image.
	NoCache bool
	// NoWait fails at once when another build holds the store.
	NoWait bool
	// Jobs bounds how many images build at once (default: processors).
	Jobs int
	// FailFast stops all images when one fails.
	FailFast bool
	// LayerTypes are the layer encodings of images that do not choose
	// their own (dsl.Image.LayerTypes); default dsl.TarGzip.
	LayerTypes []dsl.LayerType
	// Out receives the build log (default os.Stderr).
	Out io.Writer
	// ShellOnFailure opens a shell in a failed step's container, as the
	// step left it, before the build reports the failure.
	ShellOnFailure bool
	// CacheFrom are registry repositories ("host/repo") whose build cache
	// stands in for running the steps of images the store does not have.
	CacheFrom []string
	// CacheTo is a registry repository that receives the layers and cache
	// record of every image built or found cached.
	CacheTo string
	// Registry holds credentials and transport settings of registry calls.
	Registry registry.Options
	// Progress is "auto" (a live display when Out is a terminal), "tty"
	// or "plain".
	Progress string
	// DryRun prints what the build would do with each image, in order,
	// and why, and does nothing else (graph.go).
	DryRun bool
	// Params are build parameters for ${{KEY}} placeholders, over those of
	// the environment (dsl.Params). Package-level dsl.Param calls only see
	// the environment's: the CLI exports --set and --params there before
	// the definitions initialise (params.go).
	Params map[string]string
	// AllowUnpinnedURLs lets URL imports and tarball URLs go without a
	// sha256: they are then downloaded at every build to learn their
	// digest.
	AllowUnpinnedURLs bool
	// ctx, when set, bounds the registry and download requests made while
	// evaluating (tags resolved, unpinned URLs downloaded).
	ctx context.Context
}

func (o *Options) fill() error {
	if o.Store == "" {
		o.Store = DefaultStore()
	}
	if o.Layout == "" {
		o.Layout = DefaultLayout()
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if len(o.LayerTypes) == 0 {
		o.LayerTypes = []dsl.LayerType{dsl.TarGzip}
	}
	for _, t := range o.LayerTypes {
		if _, err := layer.ParseType(string(t)); err != nil {
			return fmt.Errorf("Options.LayerTypes: %w", err)
		}
	}
	return nil
}

// BuildWith builds images (and everything they need) with opts and returns
// one result per image built or found in the cache.
func BuildWith(ctx context.Context, opts Options, images ...*dsl.Image) ([]runtime.Result, error) {
	opts.ctx = ctx
	g, err := evaluate(opts, images)
	if err != nil {
		return nil, err
	}
	return buildGraph(ctx, opts, g, nil)
}

func evaluate(opts Options, images []*dsl.Image) (*dsl.Graph, error) {
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
	return dsl.Evaluate(images, dsl.Options{SourceDateEpoch: epoch, LayerTypes: opts.LayerTypes,
		Params: params, Resolver: resolver, AllowUnpinnedURLs: opts.AllowUnpinnedURLs})
}

// evaluateTargets evaluates the definitions a driver was generated for.
func evaluateTargets(opts Options, targets []Target) (*dsl.Graph, error) {
	images := make([]*dsl.Image, len(targets))
	for n, t := range targets {
		images[n] = t.Image
	}
	return evaluate(opts, images)
}

func buildGraph(ctx context.Context, opts Options, g *dsl.Graph, names []string) ([]runtime.Result, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return nil, dryRun(ctx, opts, g, names)
	}
	// What the build needs of this machine, before any work (check.go).
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
	st, err := storage.Open(ctx, opts.Store, storage.OpenOptions{NoWait: opts.NoWait, Log: opts.Out, RemoveAll: runtime.RemoveAllFunc(ctx)})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out, err := storage.OpenLayout(opts.Layout)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	caches, display, logOut, err := opts.sharing()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	results, err := runtime.Build(ctx, nodes, runtime.Options{
		Store:           st,
		Layout:          out,
		Out:             logOut,
		RegistryCache:   caches,
		Progress:        display,
		NoCache:         opts.NoCache,
		Jobs:            opts.Jobs,
		FailFast:        opts.FailFast,
		SourceDateEpoch: epoch,
		Annotations:     annotations(),
		ShellOnFailure:  opts.ShellOnFailure,
		Registry:        opts.Registry,
	})
	display.Close()
	resultTable(opts.Out, results, st.Root)
	summary(opts.Out, results, time.Since(start))
	if err != nil {
		return results, err
	}
	if err := out.GC(ctx); err != nil {
		return results, fmt.Errorf("collect unreferenced blobs of %s: %w", opts.Layout, err)
	}
	return results, nil
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

func absOr(path string) string {
	if p, err := filepath.Abs(path); err == nil {
		return p
	}
	return path
}
