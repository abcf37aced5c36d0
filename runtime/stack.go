package runtime

import (
	"context"
	"fmt"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/environ"
	"github.com/strata-build/strata/internal/flight"
	"github.com/strata-build/strata/internal/timings"
	"github.com/strata-build/strata/runtime/host"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// stack is the store as the root file systems of its images are made
// from it: the rootfs of an image is an overlay of its ancestors'
// committed layer folders over the unpacked layers of its external base.
// It holds what every user of those folders needs alike (the store, as
// the Store contract, the id maps of a rootless build, the loader of
// external bases). Build, chroot, grab and run each make one.
type stack struct {
	store Store
	// bases brings external bases into the store.
	bases *baseLoader
	// uids and gids map the ids of a rootless build; nil as root.
	uids, gids []sandbox.IDMap
	// epoch is SOURCE_DATE_EPOCH: every timestamp of what it encodes and
	// assembles.
	epoch int64
	// noVerity leaves dm-verity trees off the squashfs and erofs layers
	// it encodes, and makes it look for such layers without one.
	noVerity bool
	// squashfsWriter picks the squashfs encoder (layer.WriteOptions).
	squashfsWriter string
	// note, when set, receives the lines the build log shows of work done
	// for an image on another's behalf (an ancestor encoded).
	note func(format string, args ...any)

	encodes flight.Group[encodeResult] // by layer folder, see ensureTypes
}

// newStack returns the stack of st as this process sees it: rootless
// (with the user's subordinate id maps) unless it runs as root.
func newStack(st *storage.Store) (*stack, error) {
	uids, gids, err := host.IDMapsIfRootless()
	if err != nil {
		return nil, err
	}
	return &stack{store: st, bases: &baseLoader{store: st}, uids: uids, gids: gids}, nil
}

// lowers returns the overlay lower dirs of n's rootfs, top first: the
// committed layers of its ancestors, then the layers of the external base.
func (s *stack) lowers(ctx context.Context, n *dsl.Node) ([]string, error) {
	return s.dirs(ctx, n, n.Parent, func(p *dsl.Node) error {
		return fmt.Errorf("image %q: its base %q is not in the store", n.Name, p.Name)
	})
}

// built returns the layer folders of the rootfs of the built image n, top
// first: its own committed layer, then its lowers. An image (or ancestor)
// whose definition changed since it was built is reported as not built.
func (s *stack) built(ctx context.Context, n *dsl.Node) ([]string, error) {
	return s.dirs(ctx, n, n, func(c *dsl.Node) error {
		return fmt.Errorf("image %q is not built as currently defined: run strata build %s", c.Name, n.Name)
	})
}

// dirs returns, top first, the committed layers of top and the images
// below it, then the layers of n's external base. notBuilt is the error
// of the lowest image the store has no record of.
func (s *stack) dirs(ctx context.Context, n, top *dsl.Node, notBuilt func(*dsl.Node) error) ([]string, error) {
	var dirs []string
	var missing *dsl.Node
	for c := top; c != nil; c = c.Parent {
		rec, _, err := s.store.Lookup(c.Key)
		switch {
		case err != nil:
			return nil, err
		case rec == nil:
			missing = c
		case !rec.Empty:
			dirs = append(dirs, s.store.LayerDir(rec.LayerDir))
		}
	}
	if missing != nil {
		return nil, notBuilt(missing)
	}
	base, err := s.bases.load(ctx, n.Root())
	if err != nil {
		return nil, err
	}
	if base != nil {
		done := timings.Phase("base: unpack for " + n.Name)
		unpacked, err := s.store.UnpackBase(ctx, base, unpackOptions(s.uids != nil))
		done()
		if err != nil {
			return nil, fmt.Errorf("image %q: unpack base: %w", n.Name, err)
		}
		for i := len(unpacked) - 1; i >= 0; i-- {
			dirs = append(dirs, unpacked[i])
		}
	}
	return dirs, nil
}

// baseConfig is the config of the external base at the root of n's chain
// (zero for scratch).
func (s *stack) baseConfig(ctx context.Context, n *dsl.Node) (v1.ImageConfig, error) {
	base, err := s.bases.load(ctx, n.Root())
	if err != nil || base == nil {
		return v1.ImageConfig{}, err
	}
	return base.Config.Config, nil
}

// spec is the sandbox of a container named name over lowers (top first),
// with ws as its writable layer; the caller adds what it runs.
func (s *stack) spec(name string, lowers []string, ws *storage.Workspace) sandbox.Spec {
	return sandbox.Spec{
		Name:    name,
		Lowers:  lowers,
		Upper:   ws.Upper,
		Work:    ws.Work,
		Rootfs:  ws.Rootfs,
		TempDir: ws.Dir,
		UIDMap:  s.uids,
		GIDMap:  s.gids,
	}
}

// stepSpec is the sandbox image n's steps see, over lowers with ws as
// its writable layer: its base's environment and working directory under
// its own, with SOURCE_DATE_EPOCH set to the stack's epoch.
func (s *stack) stepSpec(ctx context.Context, n *dsl.Node, lowers []string, ws *storage.Workspace) (sandbox.Spec, error) {
	env, workDir, err := s.stepEnv(ctx, n)
	if err != nil {
		return sandbox.Spec{}, err
	}
	spec := s.spec(n.Name, lowers, ws)
	spec.Env, spec.WorkDir = env, workDir
	return spec, nil
}

// stepEnv is the environment and working directory of n's steps, on this
// machine or a backend.
func (s *stack) stepEnv(ctx context.Context, n *dsl.Node) (env []string, workDir string, err error) {
	cfg, err := s.baseConfig(ctx, n)
	if err != nil {
		return nil, "", err
	}
	return n.StepEnv(environ.Merge(baseEnv(s.epoch), cfg.Env...)), n.StepWorkDir(cfg.WorkingDir), nil
}

func (s *stack) notef(format string, args ...any) {
	if s.note != nil {
		s.note(format, args...)
	}
}

// unpackOptions: a rootless build's overlays are mounted with userxattr,
// so opaque markers of unpacked layers use the user.overlay namespace.
func unpackOptions(rootless bool) layer.UnpackOptions {
	return layer.UnpackOptions{UserXattr: rootless, Rootless: rootless}
}

// discard removes a workspace. Files a rootless step chowned to other ids
// can only be removed from inside the user namespace that owns them.
func (s *stack) discard(ctx context.Context, ws *storage.Workspace) {
	if ws.Discard() == nil || s.uids == nil {
		return
	}
	_ = sandbox.RemoveAll(context.WithoutCancel(ctx), ws.Dir, s.uids, s.gids)
	ws.Discard()
}
