package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/cmdline"
)

// command is one strata command. Its flags function registers the same
// flags the command parses (each command keeps them in a small struct
// with a register method), so that help, usage errors and the shell
// completion scripts are made from what the command really accepts.
type command struct {
	name    string
	args    string // positional arguments, as the usage line shows them
	summary string
	group   string // the heading strata help lists it under
	// images: its arguments are image names, which completion offers
	// from strata list.
	images bool
	flags  func(fs *flag.FlagSet)
	run    func(ctx context.Context, args []string, load loader) error
}

// The headings of strata help, in order.
const (
	groupDefinitions = "Commands run in a folder whose Go package holds the definitions:"
	groupBuilt       = "Commands on built images:"
	groupMachine     = "Commands on this machine:"
	groupShell       = "Commands for your shell:"
)

// commands lists every command in the order strata help shows them. It is
// a function, not a variable, because the commands themselves look here
// for their help text.
func commands() []command {
	return []command{
		{name: "build", args: "[PKG...] [NAME...]", group: groupDefinitions, images: true,
			summary: "build the named images (all when none) and tag them in the module's oci",
			flags:   func(fs *flag.FlagSet) { new(strata.BuildFlags).Register(fs) },
			run:     cmdBuild},
		{name: "graph", args: "[PKG...] [NAME...]", group: groupDefinitions, images: true,
			summary: "print the build graph: what is cached, what would be rebuilt and why (--dot)",
			flags:   func(fs *flag.FlagSet) { new(graphFlags).register(fs) },
			run:     cmdGraph},
		{name: "list", args: "[PKG...]", group: groupDefinitions,
			summary: "list the images with their doc comments",
			flags:   func(fs *flag.FlagSet) { new(strata.ParamFlags).Register(fs) },
			run:     cmdList},
		{name: "convert", args: "STACKER.YAML... [-o DIR]", group: groupDefinitions,
			summary: "write Go definitions that build the images of stacker.yaml files and their prerequisites, listing what has no equivalent",
			flags:   func(fs *flag.FlagSet) { new(convertFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdConvert(ctx, args) }},

		{name: "run", args: "NAME [-- CMD...]", group: groupBuilt, images: true,
			summary: "run an image as its config says (or CMD instead of its entrypoint and cmd)",
			flags:   func(fs *flag.FlagSet) { new(runFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdRun(ctx, args) }},
		{name: "inspect", args: "[NAME...]", group: groupBuilt, images: true,
			summary: "print layers, annotations and config of tagged images",
			flags:   func(fs *flag.FlagSet) { new(inspectFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdInspect(ctx, args) }},
		{name: "grab", args: "[PKG...] NAME:/PATH [DEST]", group: groupBuilt, images: true,
			summary: "copy a file or folder out of a built image (build-only ones too)",
			flags:   func(fs *flag.FlagSet) { new(grabFlags).register(fs) },
			run:     cmdGrab},
		{name: "mount", args: "NAME DIR", group: groupBuilt, images: true,
			summary: "mount a squashfs or erofs image read-only on DIR, each layer checked against its dm-verity root hash",
			flags:   func(fs *flag.FlagSet) { new(mountFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdMount(ctx, args) }},
		{name: "umount", args: "DIR", group: groupBuilt,
			summary: "unmount what strata mount mounted on DIR",
			flags:   func(fs *flag.FlagSet) { new(umountFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdUmount(ctx, args) }},
		{name: "publish", args: "[PKG...] [NAME...] --to REGISTRY/PREFIX|oci:PATH", group: groupBuilt, images: true,
			summary: "push built images as PREFIX/NAME:TAG (--tag, --build, --dry-run)",
			flags:   func(fs *flag.FlagSet) { new(publishFlags).register(fs) },
			run:     cmdPublish},
		{name: "clean", group: groupBuilt,
			summary: "remove the store and the output layout",
			flags:   func(fs *flag.FlagSet) { new(cleanFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdClean(ctx, args) }},
		{name: "chroot", args: "[PKG...] NAME [-- CMD...]", group: groupBuilt, images: true,
			summary: "a shell (or CMD) in a throw-away copy of a built image, build-only ones too",
			flags:   func(fs *flag.FlagSet) { new(chrootFlags).register(fs) },
			run:     cmdChroot},

		{name: "check", group: groupMachine,
			summary: "check that this machine can build (kernel, overlay, subordinate ids, tools, store)",
			flags:   func(fs *flag.FlagSet) { new(checkFlags).register(fs) },
			run:     func(ctx context.Context, args []string, _ loader) error { return cmdCheck(ctx, args) }},
		{name: "unpriv-setup", args: "--user NAME", group: groupMachine,
			summary: "as root: give NAME subordinate ids and a store, for builds without root",
			flags:   func(fs *flag.FlagSet) { new(unprivFlags).register(fs) },
			run:     func(_ context.Context, args []string, _ loader) error { return cmdUnprivSetup(args) }},

		{name: "completion", args: "bash|zsh|fish", group: groupShell,
			summary: "print a completion script for commands, flags and image names",
			flags:   func(*flag.FlagSet) {},
			run:     func(_ context.Context, args []string, _ loader) error { return cmdCompletion(os.Stdout, args) }},
		{name: "version", group: groupShell,
			summary: "print strata's module version and the Go version it was built with (also --version)",
			flags:   func(*flag.FlagSet) {},
			run:     cmdVersion},
	}
}

// lookupCommand returns the command named name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandFlags returns a flag set holding the flags of c, on throwaway
// values: for help and completion.
func commandFlags(c command) *flag.FlagSet {
	fs := newFlagSet(c.name)
	c.flags(fs)
	return fs
}

// newFlagSet returns an empty flag set for the command name that prints
// nothing by itself: parse reports errors in one line and prints help
// with --flag spellings.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func usage(w io.Writer) {
	fmt.Fprint(w, "strata builds OCI images from image definitions written in Go.\n\n")
	fmt.Fprint(w, "Usage: strata [-C DIR] COMMAND [flags] [args]\n")
	group := ""
	for _, c := range commands() {
		if c.group != group {
			group = c.group
			fmt.Fprintf(w, "\n%s\n", group)
		}
		head := strings.TrimSpace(c.name + " " + c.args)
		if len(head) > 24 {
			fmt.Fprintf(w, "  %s\n  %-24s  %s\n", head, "", c.summary)
			continue
		}
		fmt.Fprintf(w, "  %-24s  %s\n", head, c.summary)
	}
	fmt.Fprint(w, "\n-C DIR runs the command as if strata was started in DIR.\n")
	fmt.Fprint(w, "Run 'strata COMMAND -h' for a command's flags; flags are spelled --flag\n(one dash works too) and may come before, between or after the arguments.\n")
}

// printHelp writes the help of a command: its usage line, what it does
// and its flags, sorted, as --flag.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	name := strings.TrimPrefix(fs.Name(), "strata ")
	if c, ok := lookupCommand(name); ok {
		fmt.Fprintf(w, "Usage: strata %s [flags] %s\n\n%s.\n", c.name, c.args, upperFirst(c.summary))
	} else {
		fmt.Fprintf(w, "Usage: strata %s [flags]\n", name)
	}
	if !hasFlags(fs) {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	printFlags(w, fs)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printFlags writes one entry per flag, sorted by name: "--name VALUE",
// then the usage text and the default when it is not the zero value.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) { // VisitAll goes in lexical order
		value, text := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if value != "" {
			head += " " + value
		}
		if def := f.DefValue; !isZeroDefault(def) && !strings.Contains(text, "(default") {
			text += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", head, strings.ReplaceAll(text, "\n", "\n    \t"))
	})
}

// isZeroDefault reports whether a flag's default is the zero value of
// the flag types strata uses, which help does not print.
func isZeroDefault(def string) bool {
	return def == "" || def == "0" || def == "false" || def == "[]"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parse parses a command's flags and arguments as cmdline.Parse does, and
// on -h prints the command's help on stdout.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := cmdline.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(os.Stdout, fs)
	}
	return pos, err
}

// parseNoArgs is parse for a command that takes flags only.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err == nil && len(pos) > 0 {
		err = cmdline.UsageError{Err: fmt.Errorf("unexpected argument %q", pos[0])}
	}
	return err
}

// nameAndCommand splits the NAME [-- CMD...] of strata run and chroot.
func nameAndCommand(command string, pos []string) (name string, cmd []string, err error) {
	if len(pos) == 0 || pos[0] == "--" {
		return "", nil, cmdline.UsageError{Err: fmt.Errorf("which image? strata %s NAME [-- CMD...]", command)}
	}
	name, cmd = pos[0], pos[1:]
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	return name, cmd, nil
}

// commandNames lists the commands, sorted, for completion.
func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	names = append(names, "help")
	sort.Strings(names)
	return names
}
