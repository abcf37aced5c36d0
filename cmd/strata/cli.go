package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/driver"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/runtime/sandbox"
)

// execute runs one strata command line and returns the process exit
// status. load compiles and runs definitions packages for the commands
// that need them (build, list, graph, publish, grab, chroot); with a nil
// load those commands say that there are no definitions.
func execute(ctx context.Context, args []string, load loader) int {
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

// interactiveCommands attach a process of an image to the terminal: Ctrl-C
// is for that process, so it does not cancel strata.
var interactiveCommands = map[string]bool{"run": true, "chroot": true}

// notifyContext is signal.NotifyContext, except that SIGINT and SIGQUIT do
// not cancel while an interactive shell is open (build --shell-on-failure):
// the terminal delivers Ctrl-C to the shell, which shares strata's
// foreground process group, and the shell decides what it means.
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		for {
			select {
			case s := <-ch:
				if (s == os.Interrupt || s == syscall.SIGQUIT) && runtime.ShellOpen() {
					continue
				}
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}

// exitStatus ends strata with a status and no message.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the status strata exits with.
func (e exitStatus) ExitCode() int { return int(e) }

// processExit turns the exit of a process run in an image into strata's
// own exit status, as a shell would report it.
func processExit(cmd string, err error) error {
	var se *sandbox.StepError
	if !errors.As(err, &se) {
		return err
	}
	if se.Message != "" {
		fmt.Fprintf(os.Stderr, "strata %s: %v\n", cmd, err)
		return exitStatus(127) // command not found
	}
	if se.ExitCode < 0 {
		return exitStatus(128 + int(unix.SignalNum(se.Signal))) // as a shell reports a signal
	}
	return exitStatus(se.ExitCode)
}
