package runtime

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/opencontainers/go-digest"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/environ"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
)

// RunOptions configure RunImage.
type RunOptions struct {
	Store, Layout string
	// Image is the tag to run.
	Image string
	// Command, when not empty, runs instead of the image's entrypoint and
	// cmd: strata run is for looking into an image as much as for running it.
	Command []string
}

// RunImage runs a tagged image of the layout with its entrypoint, cmd,
// environment, working directory and user, in a throw-away overlay of its
// layers, attached to this process's stdin, stdout and stderr. A non-zero
// exit of the process comes back as a *sandbox.StepError.
func RunImage(ctx context.Context, o RunOptions) error {
	st, err := OpenStore(ctx, o.Store, storage.OpenOptions{Log: os.Stderr})
	if err != nil {
		return err
	}
	defer st.Close()
	img, err := st.ImportLayout(ctx, o.Layout, o.Image)
	if err != nil {
		return err
	}
	cfg := img.Config.Config
	argv := append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(o.Command) > 0 {
		argv = o.Command
	}
	if len(argv) == 0 {
		return fmt.Errorf("image %q has neither entrypoint nor cmd: say what to run: strata run %s -- CMD", o.Image, o.Image)
	}
	return runIn(ctx, st, o.Image, img.Manifest.Layers, cfg, sandbox.Step{Argv: argv, Where: "strata run " + o.Image})
}

// runIn runs one interactive step over a throw-away upper dir on top of
// the given layers. It closes st before the step starts.
func runIn(ctx context.Context, st *storage.Store, name string, layers []v1.Descriptor, cfg v1.ImageConfig, step sandbox.Step) error {
	s, err := newStack(st)
	if err != nil {
		return err
	}
	lowers, err := s.unpacked(ctx, layers)
	if err != nil {
		return err
	}
	ws, err := s.store.NewSession(name)
	if err != nil {
		return err
	}
	defer s.discard(ctx, ws)
	// The store is free for builds while the container runs.
	if err := st.Close(); err != nil {
		return err
	}
	spec := s.spec(name, lowers, ws)
	spec.WorkDir = cfg.WorkingDir
	if spec.WorkDir == "" {
		spec.WorkDir = "/"
	}
	spec.Env = environ.Merge([]string{"PATH=" + DefaultPath, "HOME=/root"}, cfg.Env...)
	if t, ok := os.LookupEnv("TERM"); ok {
		spec.Env = environ.Merge(spec.Env, "TERM="+t)
	}
	spec.User = cfg.User
	spec.Steps = []sandbox.Step{step}
	spec.Interactive = true
	spec.Stdin, spec.Stdout, spec.Stderr = os.Stdin, os.Stdout, os.Stderr
	spec.HoldOpen = []*os.File{ws.Lock}
	_, err = sandbox.Run(ctx, spec)
	return err
}

// unpacked returns the folders of layers as overlay lower dirs, top
// first. Without root, a layer this store built is its committed folder,
// as strata chroot and the build's own steps see it: unpacking its blob
// would need a chown to the subordinate ids the layer's owners map to,
// which an unprivileged user cannot make, so every file would appear
// owned by root. Other layers (bases, images from elsewhere) are
// unpacked, as a build unpacks them.
func (s *stack) unpacked(ctx context.Context, layers []v1.Descriptor) ([]string, error) {
	dirs := make([]string, len(layers))
	var rest []v1.Descriptor
	var at []int
	var committed map[digest.Digest]string
	if s.uids != nil {
		var err error
		if committed, err = s.store.CommittedLayers(); err != nil {
			return nil, err
		}
	}
	for i, l := range layers {
		if d, ok := committed[l.Digest]; ok {
			dirs[i] = d
			continue
		}
		rest, at = append(rest, l), append(at, i)
	}
	unpacked, err := s.store.UnpackAll(ctx, rest, unpackOptions(s.uids != nil))
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		dirs[i] = unpacked[j]
	}
	slices.Reverse(dirs)
	return dirs, nil
}
