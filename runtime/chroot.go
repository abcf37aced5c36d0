package runtime

import (
	"context"
	"os"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
)

// ChrootOptions configure Chroot.
type ChrootOptions struct {
	// Store stays locked while the shell is open: a rebuild would replace
	// the layer dirs of the image's chain under the shell (strata run,
	// which uses a tagged image's blobs, lets go of it).
	Store *storage.Store
	// Node is the image, evaluated as for the build that made it.
	Node *dsl.Node
	// Command runs instead of /bin/sh.
	Command []string
	// IO, when set, replaces the terminal.
	IO *ShellIO
	// SourceDateEpoch is the SOURCE_DATE_EPOCH of the shell's environment.
	SourceDateEpoch int64
}

// Chroot opens a shell (or runs o.Command) as root in a throw-away writable
// copy of a built image: a new upper dir over the image's layers, with the
// environment and working directory its build steps had. It works for
// build-only images, which are in the store but never in a layout. Nothing
// the shell does is kept. A non-zero exit comes back as a
// *sandbox.StepError.
func Chroot(ctx context.Context, o ChrootOptions) error {
	n := o.Node
	s, err := newStack(o.Store)
	if err != nil {
		return err
	}
	defer s.bases.cache.wait() // a base load left by Ctrl-C, before the store closes
	s.epoch = o.SourceDateEpoch
	lowers, err := s.built(ctx, n)
	if err != nil {
		return err
	}
	ws, err := s.store.NewWorkspace(n.Name)
	if err != nil {
		return err
	}
	defer s.discard(ctx, ws)
	spec, err := s.stepSpec(ctx, n, lowers, ws)
	if err != nil {
		return err
	}
	argv := o.Command
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	sio := o.IO
	if sio == nil {
		sio = &ShellIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	}
	shellsOpen.Add(1)
	defer shellsOpen.Add(-1)
	spec.Steps = []sandbox.Step{{Argv: argv, Where: "strata chroot " + n.Name}}
	spec.Interactive = true
	spec.Stdin, spec.Stdout, spec.Stderr = sio.Stdin, sio.Stdout, sio.Stderr
	_, err = sandbox.Run(ctx, spec)
	return err
}
