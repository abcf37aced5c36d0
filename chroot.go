package strata

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
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
)

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

// chrootFlags are the flags of strata chroot.
type chrootFlags struct {
	store string
	param paramFlags
}

func (f *chrootFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", DefaultStore(), "store `folder`")
	f.param.register(fs)
}

// cmdChroot opens a shell in a throw-away writable copy of a built image
// of the definitions.
func cmdChroot(ctx context.Context, args []string, load Loader) error {
	fs := newFlagSet("chroot")
	var f chrootFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	params, err := f.param.params()
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] == "--" {
		return cmdline.UsageError{Err: errors.New("which image? strata chroot NAME [-- CMD...]")}
	}
	name, cmd := pos[0], pos[1:]
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	targets, err := load.load(ctx, "chroot", nil)
	if err != nil {
		return err
	}
	// Layer types are not part of cache keys, so the image is found
	// whatever types it was built in.
	opts := Options{Store: f.store, Params: params}
	g, err := evaluateTargets(opts, targets)
	if err != nil {
		return err
	}
	n := g.Node(name)
	if n == nil {
		return fmt.Errorf("no image named %q in the definitions (strata list shows them)", name)
	}
	if _, err := os.Stat(opts.Store); err != nil {
		return fmt.Errorf("no store at %s: build %s first", opts.Store, name)
	}
	st, err := storage.Open(ctx, opts.Store, storage.OpenOptions{Log: os.Stderr, RemoveAll: runtime.RemoveAllFunc(ctx)})
	if err != nil {
		return err
	}
	defer st.Close()
	epoch, err := runtime.EpochFromEnv()
	if err != nil {
		return err
	}
	err = runtime.Chroot(ctx, runtime.ChrootOptions{Store: st, Node: n, Command: cmd, SourceDateEpoch: epoch})
	return processExit("chroot", err)
}

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
