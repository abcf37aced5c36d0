package strata

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/driver"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage/layer"
)

// Command runs one strata command line and returns the process exit
// status. load compiles and runs definitions packages for the commands
// that need them (build, list, graph, publish, grab, chroot); with a nil
// load those commands say that there are no definitions.
func Command(ctx context.Context, args []string, load Loader) int {
	if len(args) > 0 && interactiveCommands[args[0]] {
		// Ctrl-C in strata run is for the process in the image (the
		// sandbox relays it, or passes the signal on); strata must
		// outlive it.
		signal.Notify(make(chan os.Signal, 1), os.Interrupt, syscall.SIGQUIT)
	}
	sigs := []os.Signal{syscall.SIGTERM}
	if len(args) == 0 || !interactiveCommands[args[0]] {
		sigs = append(sigs, os.Interrupt, syscall.SIGQUIT)
	}
	ctx, stop := notifyContext(ctx, sigs...)
	defer stop()
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	cmd, rest := args[0], args[1:]
	if cmd == "--version" {
		cmd = "version"
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" || cmd == "-help" {
		if len(rest) > 0 {
			if c, ok := lookupCommand(rest[0]); ok {
				printHelp(os.Stdout, commandFlags(c))
				return 0
			}
		}
		usage(os.Stdout)
		return 0
	}
	c, ok := lookupCommand(cmd)
	if !ok {
		fmt.Fprintf(os.Stderr, "strata: unknown command %q; see 'strata help'\n", cmd)
		return 2
	}
	err := c.run(ctx, rest, load)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var fe cmdline.FlagError
	if errors.As(err, &fe) {
		fmt.Fprintf(os.Stderr, "strata %s: %v; see 'strata %s -h'\n", cmd, err, cmd)
		return 2
	}
	var ce *driver.CompileError
	if errors.As(err, &ce) {
		// The compiler's messages, as it wrote them, are the whole story.
		fmt.Fprintln(os.Stderr, ce.Error())
		return 1
	}
	var ue cmdline.UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "strata %s: %v\n", cmd, err)
		return 2
	}
	var be *runtime.BuildError
	if errors.As(err, &be) {
		// The summary already named every failure.
		return be.ExitCode()
	}
	var es exitStatus
	if errors.As(err, &es) {
		return es.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "strata %s: %v\n", cmd, err)
	if ctx.Err() != nil {
		return 130
	}
	return 1
}

// buildFlags are shared by every command that builds.
type buildFlags struct {
	opts  Options
	types cmdline.Strings
	share sharingFlags
	param paramFlags // --set, --params (params.go)
}

func (b *buildFlags) register(fs *flag.FlagSet) {
	b.param.register(fs)
	fs.BoolVar(&b.opts.AllowUnpinnedURLs, "allow-unpinned-urls", false, "let URL imports and tarball URLs go without a sha256 (downloaded at every build)")
	fs.StringVar(&b.opts.Store, "store", DefaultStore(), "store `folder` (unpacked layers, cache, blobs)")
	fs.StringVar(&b.opts.Layout, "layout", DefaultLayout(), "output OCI layout `folder`")
	fs.BoolVar(&b.opts.NoCache, "no-cache", false, "rebuild every selected image")
	fs.BoolVar(&b.opts.NoWait, "no-wait", false, "fail at once when another build holds the store")
	fs.IntVar(&b.opts.Jobs, "jobs", 0, "images built at once (default: number of processors)")
	fs.BoolVar(&b.opts.FailFast, "fail-fast", false, "stop every image when one fails")
	fs.Var(&b.types, "layer-type", "layer `type`: tar+gzip (default), tar+zstd or squashfs; repeat for several")
	fs.BoolVar(&b.opts.ShellOnFailure, "shell-on-failure", false, "open a shell in a failed step's container before reporting the failure")
	b.share.register(fs)
}

func (b *buildFlags) options() (Options, error) {
	o := b.opts
	for _, s := range b.types {
		t, err := layer.ParseType(s)
		if err != nil {
			return o, cmdline.UsageError{Err: err}
		}
		o.LayerTypes = append(o.LayerTypes, dsl.LayerType(t))
	}
	if err := b.share.apply(&o); err != nil {
		return o, err
	}
	params, err := b.param.params()
	if err != nil {
		return o, err
	}
	o.Params = params
	return o, nil
}

func cmdBuild(ctx context.Context, args []string, load Loader) error {
	fs := newFlagSet("build")
	var bf buildFlags
	bf.registerBuild(fs)
	names, err := parse(fs, args)
	if err != nil {
		return err
	}
	opts, err := bf.options()
	if err != nil {
		return err
	}
	patterns, names := splitPatterns(names)
	targets, err := load.load(ctx, "build", patterns)
	if err != nil {
		return err
	}
	opts.ctx = ctx // bounds the requests evaluation makes
	g, err := evaluateTargets(opts, targets)
	if err != nil {
		return err
	}
	_, err = buildGraph(ctx, opts, g, names)
	return err
}

func cmdList(ctx context.Context, args []string, load Loader) error {
	fs := newFlagSet("list")
	// Accepted like every command that runs the definitions: a doc
	// comment cannot depend on them, but the same command line with
	// "list" in place of "build" must work.
	var p paramFlags
	p.register(fs)
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
	var sorted []Target
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
