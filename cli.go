package strata

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/strata-build/strata/dsl"
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
	var err error
	switch cmd {
	case "build":
		err = cmdBuild(ctx, rest, load)
	case "list":
		err = cmdList(ctx, rest, load)
	case "run":
		err = cmdRun(ctx, rest)
	case "inspect":
		err = cmdInspect(ctx, rest)
	case "grab":
		err = cmdGrab(ctx, rest, load)
	case "publish":
		err = cmdPublish(ctx, rest, load)
	case "clean":
		err = cmdClean(ctx, rest)
	case "check":
		err = cmdCheck(ctx, rest)
	case "unpriv-setup":
		err = cmdUnprivSetup(rest)
	case "chroot":
		err = cmdChroot(ctx, rest, load)
	case "graph":
		err = cmdGraph(ctx, rest, load)
	case "version", "--version":
		printVersion(os.Stdout)
		return 0
	case "help", "-h", "--help":
		usage(os.Stdout)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "strata: unknown command %q\n", cmd)
		usage(os.Stderr)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "strata %s: %v\n", cmd, err)
		return 2
	}
	var ce *driver.CompileError
	if errors.As(err, &ce) {
		// The compiler's messages, as it wrote them, are the whole story.
		fmt.Fprintln(os.Stderr, ce.Error())
		return 1
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

type usageError struct{ error }

func usage(w io.Writer) {
	fmt.Fprint(w, `strata builds OCI images from image definitions written in Go.

Usage: strata [-C DIR] COMMAND [flags] [args]

Commands run in a folder whose Go package holds the definitions:
  build [NAME...]      build the named images (all when none) and tag them in ./oci
  graph [NAME...]      print the build graph: what is cached, what would be rebuilt and why (--dot)
  list                 list the images with their doc comments

Commands on built images:
  run NAME [-- CMD...] run an image as its config says (or CMD instead of its entrypoint and cmd)
  inspect [NAME...]    print layers, annotations and config of tagged images
  grab NAME:/PATH [DEST]  copy a file or folder out of a built image (build-only ones too)
  publish [NAME...] --to REGISTRY/PREFIX|oci:PATH
                       push built images as PREFIX/NAME:TAG (--tag, --build, --dry-run)
  clean                remove the store and the output layout
  chroot NAME [-- CMD...]  a shell (or CMD) in a throw-away copy of a built image, build-only ones too

Commands on this machine:
  version              print strata's module version and the Go version it was built with
  check                check that this machine can build (kernel, overlay, subordinate ids, tools, store)
  unpriv-setup --user NAME  as root: give NAME subordinate ids and a store, for builds without root

Run "strata COMMAND -h" for a command's flags.
`)
}

// buildFlags are shared by every command that builds.
type buildFlags struct {
	opts  Options
	types stringList
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
			return o, usageError{err}
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

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdBuild(ctx context.Context, args []string, load Loader) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
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
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
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
		return usageError{fmt.Errorf("list takes package folders (./images, ./...), not image names: %s", strings.Join(names, " "))}
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

// parse parses flags that may come before, between or after positional
// arguments ("strata build hello --no-cache"). Arguments after "--" are
// returned untouched, after a "--" element, for commands that pass them on.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(os.Stderr)
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
