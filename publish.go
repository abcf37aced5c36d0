package strata

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
	"github.com/strata-build/strata/storage/publish"
	"github.com/strata-build/strata/storage/regcache"
	"github.com/strata-build/strata/storage/registry"
)

// sharingFlags are the flags of commands that talk to registries or show
// progress: build and publish.
type sharingFlags struct {
	cacheFrom cmdline.Strings
	cacheTo   string
	progress  string
	insecure  bool
	insecureH cmdline.Strings
	caFile    string
	creds     string
}

func (s *sharingFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.cacheFrom, "cache-from", "registry `REPO` whose build cache stands in for running the steps of images not in the store; repeatable")
	fs.StringVar(&s.cacheTo, "cache-to", "", "registry `REPO` that receives the layers and cache record of every image built")
	fs.StringVar(&s.progress, "progress", "auto", "progress `mode`: auto (live on a terminal, plain lines otherwise), tty or plain")
	fs.BoolVar(&s.insecure, "insecure", false, "allow plain HTTP and unverifiable TLS certificates for every registry call")
	fs.Var(&s.insecureH, "insecure-registry", "allow plain HTTP and unverifiable TLS certificates for the registry `HOST[:PORT]` only; repeatable")
	fs.StringVar(&s.caFile, "ca-file", "", "PEM `file` of a private CA that signs registry certificates")
	fs.StringVar(&s.creds, "creds", "", "registry credentials `USER:PASSWORD` (default: the docker config, then the containers auth file)")
}

func (s *sharingFlags) apply(o *Options) error {
	switch s.progress {
	case "auto", "tty", "plain":
	default:
		return cmdline.UsageError{Err: fmt.Errorf("--progress=%q: use auto, tty or plain", s.progress)}
	}
	o.Progress = s.progress
	o.CacheFrom = append(o.CacheFrom, s.cacheFrom...)
	if s.cacheTo != "" {
		o.CacheTo = s.cacheTo
	}
	o.Registry.Insecure = o.Registry.Insecure || s.insecure
	for _, h := range s.insecureH {
		host, err := registry.RegistryHost(h)
		if err != nil {
			return cmdline.UsageError{Err: fmt.Errorf("--insecure-registry: %w", err)}
		}
		o.Registry.InsecureHosts = append(o.Registry.InsecureHosts, host)
	}
	if s.caFile != "" {
		o.Registry.CAFile = s.caFile
	}
	if s.creds != "" {
		user, pass, _ := strings.Cut(s.creds, ":")
		o.Registry.Username, o.Registry.Password = user, pass
	}
	return nil
}

// sharing sets up what Options ask for beyond the store: the registry
// caches and, on a terminal, the live display. out is where the build log
// goes (the display when there is one); done stops the display before the
// summary is printed.
func (o Options) sharing() (caches runtime.RegistryCache, display *runtime.Display, out io.Writer, err error) {
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
	display = o.display()
	if display != nil {
		return caches, display, display, nil
	}
	return caches, nil, o.Out, nil
}

// display returns a live display when Progress asks for one (or is auto
// and Out is a terminal), nil for plain lines.
func (o Options) display() *runtime.Display {
	f, ok := o.Out.(*os.File)
	if !ok || o.Progress == "plain" {
		return nil
	}
	if o.Progress == "tty" || runtime.IsTerminal(f) {
		return runtime.NewDisplay(f)
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
			size = runtime.HumanBytes(r.Record.Layers[0].Descriptor.Size)
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

// destination is where publish sends images: a registry prefix or a local
// OCI layout.
type destination struct {
	prefix string // registry: "host/prefix", images go to prefix/NAME:TAG
	layout string // oci:PATH: images are tagged NAME:TAG in PATH
}

func parseDestination(to string, ro registry.Options) (destination, error) {
	if p, ok := strings.CutPrefix(to, "oci:"); ok {
		if p == "" {
			return destination{}, cmdline.UsageError{Err: errors.New("--to oci:PATH needs a folder")}
		}
		return destination{layout: p}, nil
	}
	to = strings.TrimSuffix(strings.TrimPrefix(to, "docker://"), "/")
	if _, err := registry.ParseRepository(to, ro); err != nil {
		return destination{}, cmdline.UsageError{Err: fmt.Errorf("--to %s: %w", to, err)}
	}
	return destination{prefix: to}, nil
}

// pushItem is one manifest to publish: an image in one layer type under
// one tag.
type pushItem struct {
	node      *dsl.Node
	layoutTag string // the tag the build gave it in the output layout
	ref       string // where it goes: host/prefix/name:tag or name:tag in a layout
	tag       string
}

func (d destination) String() string {
	if d.layout != "" {
		return "oci:" + d.layout
	}
	return d.prefix
}

// plan lists what publishing nodes means: every layer type of every image
// under every tag, squashfs as TAG-squashfs as in the build's layout.
func (d destination) plan(nodes []*dsl.Node, tags []string) ([]pushItem, error) {
	var items []pushItem
	for _, n := range nodes {
		imgTags := tags
		if len(imgTags) == 0 {
			imgTags = n.Image.Tags()
		}
		if len(imgTags) == 0 {
			imgTags = []string{"latest"}
		}
		for i, lt := range n.LayerTypes {
			t, err := layer.ParseType(string(lt))
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", n.Name, err)
			}
			for _, tag := range imgTags {
				tag = runtime.TagName(tag, t, i == 0)
				ref := n.Name + ":" + tag
				if d.layout == "" {
					ref = d.prefix + "/" + ref
				}
				items = append(items, pushItem{node: n, layoutTag: runtime.TagName(n.Name, t, i == 0), ref: ref, tag: tag})
			}
		}
	}
	return items, nil
}

// publishFlags are the flags of strata publish: those of a build (for
// --build, and to compute the same cache keys) and its own.
type publishFlags struct {
	build   buildFlags
	to      string
	tags    cmdline.Strings
	doBuild bool
	dryRun  bool
}

func (f *publishFlags) register(fs *flag.FlagSet) {
	f.build.register(fs)
	fs.StringVar(&f.to, "to", "", "where to publish: `REGISTRY/PREFIX` (as PREFIX/NAME:TAG) or oci:PATH (a local OCI layout)")
	fs.Var(&f.tags, "tag", "`tag` to publish under, repeatable (default: the image's own tags, else latest)")
	fs.BoolVar(&f.doBuild, "build", false, "build images that are not built or are stale first")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print what would be published where, and publish nothing")
}

// cmdPublish pushes built images to a registry or a local layout.
func cmdPublish(ctx context.Context, args []string, load Loader) error {
	fs := newFlagSet("publish")
	var f publishFlags
	f.register(fs)
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts, err := f.build.options()
	if err != nil {
		return err
	}
	if f.to == "" {
		return cmdline.UsageError{Err: errors.New("--to REGISTRY/PREFIX or --to oci:PATH is required")}
	}
	if opts.NoCache && !f.doBuild {
		return cmdline.UsageError{Err: errors.New("--no-cache rebuilds images: publish builds nothing without --build")}
	}
	if err := opts.fill(); err != nil {
		return err
	}
	if _, err := parseDestination(f.to, opts.Registry); err != nil {
		return err
	}
	patterns, names := splitPatterns(names)
	targets, err := load.load(ctx, "publish", patterns)
	if err != nil {
		return err
	}
	popts := PublishOptions{Options: opts, To: f.to, Tags: f.tags, Build: f.doBuild, DryRun: f.dryRun}
	popts.ctx = ctx // bounds the requests evaluation makes
	g, err := evaluateTargets(popts.Options, targets)
	if err != nil {
		return err
	}
	return publishGraph(ctx, popts, g, names)
}

// PublishOptions configure Publish.
type PublishOptions struct {
	// Options are the build's: the store and layout the images were built
	// into, the registry settings, and for Build how to build.
	Options
	// To is where the images go: "REGISTRY/PREFIX" (as PREFIX/NAME:TAG)
	// or "oci:PATH" (a local OCI layout).
	To string
	// Tags to publish under (default: each image's own, else "latest").
	Tags []string
	// Build builds first the images that are not built or are stale;
	// without it, such images make Publish fail and nothing is built.
	Build bool
	// DryRun prints what would be published where, and publishes nothing.
	DryRun bool
}

// PublishWith publishes images (never build-only ones) to opts.To, as
// strata publish does. The images it needs are evaluated as Build
// evaluates them, so a mage target can publish what it built.
func PublishWith(ctx context.Context, opts PublishOptions, images ...*dsl.Image) error {
	if opts.To == "" {
		return errors.New("PublishOptions.To is empty: give REGISTRY/PREFIX or oci:PATH")
	}
	if opts.NoCache && !opts.Build {
		return errors.New("PublishOptions: NoCache rebuilds images, which needs Build")
	}
	if err := opts.fill(); err != nil {
		return err
	}
	if _, err := parseDestination(opts.To, opts.Registry); err != nil {
		return err
	}
	opts.ctx = ctx
	g, err := evaluate(opts.Options, images)
	if err != nil {
		return err
	}
	names := make([]string, len(images))
	for i, img := range images {
		names[i] = img.Name()
	}
	return publishGraph(ctx, opts, g, names)
}

// publishGraph publishes the named images of g (all when none).
func publishGraph(ctx context.Context, popts PublishOptions, g *dsl.Graph, names []string) error {
	opts := popts.Options
	if err := opts.fill(); err != nil {
		return err
	}
	dest, err := parseDestination(popts.To, opts.Registry)
	if err != nil {
		return err
	}
	nodes, err := publishable(g, names)
	if err != nil {
		return err
	}
	items, err := dest.plan(nodes, popts.Tags)
	if err != nil {
		return err
	}
	chain, problems, err := publishState(ctx, opts, g, nodes)
	if err != nil {
		return err
	}
	if popts.DryRun {
		return printPlan(os.Stdout, items, problems, popts.Build)
	}
	if popts.Build {
		pubNames := make([]string, len(nodes))
		for i, n := range nodes {
			pubNames[i] = n.Name
		}
		if _, err := buildGraph(ctx, opts, g, pubNames); err != nil {
			return err
		}
	} else {
		if len(problems) > 0 {
			lines := make([]string, 0, len(problems))
			for _, n := range nodes {
				if p, ok := problems[n.Name]; ok {
					lines = append(lines, p)
				}
			}
			return fmt.Errorf("nothing published:\n  %s\nrun strata build first, or strata publish --build", strings.Join(lines, "\n  "))
		}
		if err := tagBuilt(ctx, opts, chain); err != nil {
			return err
		}
	}
	return pushAll(ctx, opts, dest, items)
}

// publishable selects the named images (all when none), leaving out
// build-only ones, which are never published.
func publishable(g *dsl.Graph, names []string) ([]*dsl.Node, error) {
	for _, name := range names {
		if n := g.Node(name); n != nil && n.Image.IsBuildOnly() {
			return nil, cmdline.UsageError{Err: fmt.Errorf("image %q is build-only: it is never published", name)}
		}
	}
	sel, err := g.Select(names...)
	if err != nil {
		return nil, cmdline.UsageError{Err: err}
	}
	var out []*dsl.Node
	for _, n := range sel {
		if !n.Image.IsBuildOnly() && (len(names) == 0 || contains(names, n.Name)) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, cmdline.UsageError{Err: errors.New("no image to publish: every selected image is build-only")}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printPlan(w io.Writer, items []pushItem, problems map[string]string, build bool) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tFROM LAYOUT TAG\tTO\tSTATE")
	for _, it := range items {
		state := "built"
		if p, ok := problems[it.node.Name]; ok {
			state = p
			if build {
				state += "; --build builds it"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.node.Name, it.layoutTag, it.ref, state)
	}
	tw.Flush()
	fmt.Fprintln(w, "dry run: nothing was published")
	return nil
}

// pushAll sends every item, in build order so that an image's base is in
// the registry before it and its layers can be mounted from there.
func pushAll(ctx context.Context, opts Options, dest destination, items []pushItem) error {
	st, err := storage.Open(ctx, opts.Store, storage.OpenOptions{NoWait: opts.NoWait, Log: opts.Out, RemoveAll: runtime.RemoveAllFunc(ctx)})
	if err != nil {
		return err
	}
	defer st.Close()
	built, err := storage.OpenLayout(opts.Layout)
	if err != nil {
		return err
	}
	defer built.Close()
	var target *storage.Layout
	if dest.layout != "" {
		if target, err = storage.OpenLayout(dest.layout); err != nil {
			return err
		}
		defer target.Close()
	}
	display := opts.display()
	out := opts.Out
	if display != nil {
		out = display
		for _, it := range items {
			display.Images(it.ref)
		}
	}
	mounts, err := mountSources(st, dest, opts.Registry, items)
	if err != nil {
		return err
	}
	var rows [][4]string
	var failure error
	for i, it := range items {
		desc, err := built.Resolve(ctx, it.layoutTag)
		if err != nil {
			failure = fmt.Errorf("image %q: %w", it.node.Name, err)
			break
		}
		display.State(it.ref, "pushing")
		sent := display.Pushed(it.ref)
		if sent == nil {
			sent = new(atomic.Int64)
		}
		if target != nil {
			err = target.Tag(ctx, st, it.ref, desc)
		} else {
			err = pushOne(ctx, st, desc, it.ref, opts.Registry, mounts, sent)
		}
		if err != nil {
			display.State(it.ref, "failed")
			failure = fmt.Errorf("publish image %q to %s: %w\n%d of %d published; running the same command again sends only what is missing", it.node.Name, it.ref, err, i, len(items))
			break
		}
		display.State(it.ref, "pushed")
		fmt.Fprintf(out, "%s: published %s %s (%s uploaded)\n", it.node.Name, it.ref, desc.Digest, runtime.HumanBytes(sent.Load()))
		rows = append(rows, [4]string{it.node.Name, it.ref, desc.Digest.String(), runtime.HumanBytes(sent.Load())})
	}
	display.Close()
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tPUBLISHED AS\tDIGEST\tUPLOADED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
		}
		tw.Flush()
	}
	return failure
}

func pushOne(ctx context.Context, st *storage.Store, desc v1.Descriptor, ref string, ro registry.Options, mounts map[digest.Digest]name.Repository, sent *atomic.Int64) error {
	r, err := registry.ParseReference(ref, ro)
	if err != nil {
		return err
	}
	img, err := publish.StoreImage(st, desc, sent)
	if err != nil {
		return err
	}
	return publish.Push(ctx, img, r, publish.Options{Registry: ro, MountFrom: mounts})
}

// mountSources maps each layer of a published image to the repository it
// is published to, so that images built on it ask the registry to mount
// the layer from there instead of uploading it again.
func mountSources(st *storage.Store, dest destination, ro registry.Options, items []pushItem) (map[digest.Digest]name.Repository, error) {
	if dest.layout != "" {
		return nil, nil
	}
	mounts := map[digest.Digest]name.Repository{}
	for _, it := range items {
		rec, _, err := st.Lookup(it.node.Key)
		if err != nil || rec == nil {
			continue // pushing it reports the problem
		}
		repo, err := registry.ParseRepository(dest.prefix+"/"+it.node.Name, ro)
		if err != nil {
			return nil, cmdline.UsageError{Err: fmt.Errorf("--to %s: image %q: %w", dest.prefix, it.node.Name, err)}
		}
		for _, b := range rec.Layers {
			if _, ok := mounts[b.Descriptor.Digest]; !ok {
				mounts[b.Descriptor.Digest] = repo
			}
		}
	}
	return mounts, nil
}
