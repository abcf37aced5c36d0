package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/strata-build/strata/runtime/sandbox"
)

// shellsOpen counts the interactive shells strata has open (a shell on
// failure, a chroot). While one is open, Ctrl-C belongs to the shell: see
// ShellOpen.
var shellsOpen atomic.Int32

// ShellOpen reports whether an interactive shell is attached to the
// terminal. The CLI then leaves SIGINT to the shell instead of cancelling
// the build: the shell shares strata's foreground process group, so the
// terminal sends Ctrl-C to both.
func ShellOpen() bool { return shellsOpen.Load() > 0 }

// shellMu lets one failed image at a time own the terminal.
var shellMu sync.Mutex

// debugShell is the --shell-on-failure hook: it opens /bin/sh in the
// failed step's container, over the same lowers and the same upper dir,
// so the file system is exactly as the step left it (its processes are
// gone: the step's pid namespace died with it). The build reports the
// failure once the shell exits.
func (b *builder) debugShell(ctx context.Context, spec sandbox.Spec, failure error) {
	if !b.opts.ShellOnFailure || ctx.Err() != nil {
		return
	}
	shellMu.Lock()
	defer shellMu.Unlock()
	b.con.hold()
	defer b.con.release()
	in, out, errOut := b.shellIO()
	fmt.Fprintf(errOut, "%s: %v\n%s: --shell-on-failure: a shell in the container as the failed step left it (exit to let the build report the failure)\n", spec.Name, failure, spec.Name)
	s := spec
	s.Steps = []sandbox.Step{{Argv: []string{"/bin/sh"}, Where: "--shell-on-failure"}}
	s.Finish = nil
	s.Interactive = true
	s.Stdin, s.Stdout, s.Stderr = in, out, errOut
	shellsOpen.Add(1)
	defer shellsOpen.Add(-1)
	_, err := sandbox.Run(ctx, s)
	var se *sandbox.StepError
	switch {
	case errors.As(err, &se) && se.Message != "":
		fmt.Fprintf(errOut, "%s: no shell: %s\n", spec.Name, se.Message)
	case err != nil && !errors.As(err, &se):
		fmt.Fprintf(errOut, "%s: shell on failure: %v\n", spec.Name, err)
	}
}

// shellIO are the streams of a shell on failure: the terminal, unless the
// caller gave others.
func (b *builder) shellIO() (io.Reader, io.Writer, io.Writer) {
	if b.opts.ShellIO != nil {
		return b.opts.ShellIO.Stdin, b.opts.ShellIO.Stdout, b.opts.ShellIO.Stderr
	}
	return os.Stdin, os.Stdout, os.Stderr
}

// ShellIO are the standard streams of an interactive shell.
type ShellIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}
