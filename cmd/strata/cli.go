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
	code := runLine(ctx, args, load)
	if afterCommand != nil {
		afterCommand()
	}
	// The status says whether a signal came, not whether work was still
	// running when it did: one that arrives after the last step (or after
	// a command that did not look at ctx) still means the caller asked
	// strata to stop, and a script must not read that as success.
	if sig := stop(); sig != nil {
		if code == 0 {
			fmt.Fprintf(os.Stderr, "strata: received %s as the command finished\n", signalName(sig))
		}
		return signalStatus(sig)
	}
	return code
}

// afterCommand, when set by a test, runs between the command's end and the
// check for a signal: where a signal that came too late used to be lost.
var afterCommand func()

// signalStatus is the exit status that reports sig, as a shell reports a
// process killed by it: 130 for SIGINT, 143 for SIGTERM.
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		return unix.SignalName(s)
	}
	return sig.String()
}

// runLine runs the command line args under ctx and returns its exit
// status.
func runLine(ctx context.Context, args []string, load loader) int {
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
// foreground process group, and the shell decides what it means. stop
// ends the notification and returns the first signal that cancelled ctx,
// or nil. After stop, a signal takes its default action: it ends strata
// as killed by it, so no signal is ever lost between stop and exit.
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, func() os.Signal) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	quit, exited := make(chan struct{}), make(chan struct{})
	var received os.Signal
	handle := func(s os.Signal) {
		if (s == os.Interrupt || s == syscall.SIGQUIT) && runtime.ShellOpen() {
			return
		}
		if received == nil {
			received = s
		}
		cancel()
	}
	go func() {
		defer close(exited)
		for {
			select {
			case s := <-ch:
				handle(s)
			case <-quit:
				// signal.Stop has returned: every signal sent before it
				// is in ch, or takes its default action from now on.
				for {
					select {
					case s := <-ch:
						handle(s)
					default:
						return
					}
				}
			}
		}
	}()
	return ctx, func() os.Signal {
		signal.Stop(ch)
		close(quit)
		<-exited
		cancel()
		return received
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
