package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/go-digest"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/timings"
	"github.com/strata-build/strata/internal/unixmode"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// A Backend runs the steps of an image somewhere other than this
// machine's sandbox (BuildKit, runtime/buildkit) and hands back their
// changes as one layer. Everything else stays strata's: cache keys and
// records, encoding, configs, tags, the registry cache. So an image built
// by a backend is recorded like one built here, and mixing backends never
// rebuilds what either built.
type Backend interface {
	// Run runs job's steps over its parent root file system and hands
	// the layer of their changes to job.Layer.
	Run(ctx context.Context, job *Job) error
	// String names the backend in the build log ("buildkit unix:///…").
	String() string
	Close() error
}

// Job is one image's steps for a Backend.
type Job struct {
	Image string
	// Blobs is an OCI image layout folder holding the manifests below
	// and all their blobs (the store's own).
	Blobs string
	// Key is the image's cache key, by which the images built on it in
	// the same build find what the backend made of it.
	Key digest.Digest
	// Parent is the root file system the steps start from.
	Parent Rootfs
	// Steps are the image's steps. An import of a URL is checked against
	// Imports (its sha256, by step index); an import from another image
	// reads that image's root file system (ImageImports).
	Steps        []dsl.Step
	Imports      map[int]digest.Digest
	ImageImports map[int]ImageImport
	// Env and WorkDir are those of the steps (the base's under the
	// image's, with SOURCE_DATE_EPOCH and the proxy variables).
	Env     []string
	WorkDir string
	Caches  []dsl.CacheMount
	// Secrets are sent through the backend's session, never in its
	// build definition.
	Secrets []sandbox.Secret
	// Out receives the steps' output; State, when set, the image's state
	// for the live display ("step 2/3").
	Out   io.Writer
	State func(string)
	// Layer is given the layer of the steps' changes as it arrives, a
	// tar stream (gzip, zstd or none): not at all when nothing changed.
	// Each call starts over, so a backend that solves again may call it
	// again.
	Layer func(io.Reader) error
}

// Rootfs is the root file system of an image a job starts from or
// imports from: the image with cache key Key, which the backend may still
// hold from earlier in the same build, else the image Manifest writes
// into the store (its layers tar), "" for scratch. Manifest may have to
// encode the image's layer first, so it is only called when needed.
type Rootfs struct {
	Key      digest.Digest
	Manifest func() (digest.Digest, error)
}

// ImageImport is the source of an import from another image: that
// image's root file system, and whether the path is a folder there.
type ImageImport struct {
	Rootfs
	Folder bool
	// Mode is the folder's own mode bits, as chmod(2) takes them.
	Mode uint32
}

// StepFailed is a step a backend ran that failed: the step's index in
// Job.Steps, its exit code (-1 when unknown) and what the backend said.
type StepFailed struct {
	Index    int
	ExitCode int
	Message  string
}

func (e *StepFailed) Error() string { return e.Message }

var (
	backendsMu sync.Mutex
	backends   = map[string]func(ctx context.Context, addr string) (Backend, error){}
)

// RegisterBackend makes OpenBackend take addresses with the given URL
// schemes. A package that needs a heavy client (BuildKit's) registers
// itself when imported, so that only programs that want it link it:
// cmd/strata does, a magefile imports runtime/buildkit for it.
func RegisterBackend(open func(ctx context.Context, addr string) (Backend, error), schemes ...string) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	for _, s := range schemes {
		backends[s] = open
	}
}

// OpenBackend connects to the backend at addr (--backend); nil for ""
// or "local", this machine's sandbox.
func OpenBackend(ctx context.Context, addr string) (Backend, error) {
	if addr == "" || addr == "local" {
		return nil, nil
	}
	scheme, _, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("--backend %q: want local or an address such as unix:///run/buildkit/buildkitd.sock, buildkit://HOST:PORT, docker-container://NAME or kube-pod://POD", addr)
	}
	backendsMu.Lock()
	open := backends[scheme]
	var known []string
	for s := range backends {
		known = append(known, s+"://")
	}
	backendsMu.Unlock()
	slices.Sort(known)
	if open == nil {
		if len(known) == 0 {
			return nil, fmt.Errorf("--backend %q: this program has no remote backend linked in; a magefile adds BuildKit's with: import _ \"github.com/strata-build/strata/runtime/buildkit\"", addr)
		}
		return nil, fmt.Errorf("--backend %q: unknown scheme %s://, want one of %s", addr, scheme, strings.Join(known, ", "))
	}
	return open(ctx, addr)
}

// backendType is the tar type the root file systems a backend starts
// from are sent in: the build's own tar type of the image when it has
// one, so nothing is encoded twice, else tar+zstd, the quickest.
func backendType(n *dsl.Node) layertype.Type {
	for _, t := range n.LayerTypes {
		if t.Tar() {
			return t
		}
	}
	return layertype.TarZstd
}

// rootfs is the root file system of chain's last image (of root's base
// when chain is empty) for a backend.
func (s *stack) rootfs(ctx context.Context, root *dsl.Node, chain []*dsl.Node, t layertype.Type) Rootfs {
	r := Rootfs{Manifest: func() (digest.Digest, error) { return s.rootfsManifest(ctx, root, chain, t) }}
	if len(chain) > 0 {
		r.Key = chain[len(chain)-1].Key
	}
	return r
}

// rootfsManifest writes into the store the manifest of the root file
// system of chain's last image (of root's base when chain is empty), in
// tar layers of type t: what a backend starts from. "" is scratch.
func (s *stack) rootfsManifest(ctx context.Context, root *dsl.Node, chain []*dsl.Node, t layertype.Type) (digest.Digest, error) {
	img, baseCfg, _, err := s.chainImage(ctx, root, chain, t)
	if err != nil {
		return "", err
	}
	if len(img.Layers) == 0 {
		return "", nil
	}
	for _, l := range img.Layers {
		if lt, err := layer.TypeOfMediaType(l.MediaType); err != nil || !lt.Tar() {
			// A stacker base of squashfs layers: BuildKit unpacks tar
			// layers only.
			return "", fmt.Errorf("the base of %s has a %s layer, which BuildKit cannot unpack: build on it with the local backend", root.Name, l.MediaType)
		}
	}
	img.Config = baseCfg
	desc, err := s.store.PutImage(ctx, img)
	return desc.Digest, err
}

// runRemote runs n's steps on the build's backend and unpacks the layer it
// exports into ws's upper dir as an overlay upper.
func (b *builder) runRemote(ctx context.Context, n *dsl.Node, ws *storage.Workspace, env []string, workDir string) (err error) {
	if b.uids != nil {
		return fmt.Errorf("image %q: --backend %s needs root here: the layer it exports is unpacked into the store with its owners", n.Name, b.opts.Backend)
	}
	if binds := n.Image.Binds(); len(binds) > 0 {
		bd := binds[0]
		return fmt.Errorf("image %q: bind mount of %s at %s (%s) cannot reach the remote worker of --backend %s: build this image with the local backend, or import what it needs", n.Name, bd.Source, bd.Dest, bd.Pos, b.opts.Backend)
	}
	t := backendType(n)
	chain := n.Chain()
	job := &Job{
		Image:        n.Name,
		Key:          n.Key,
		Blobs:        b.store.BlobLayout(),
		Steps:        n.Image.Steps(),
		Imports:      n.Imports,
		ImageImports: map[int]ImageImport{},
		Env:          env,
		WorkDir:      workDir,
		Caches:       n.Image.CacheMounts(),
		Secrets:      b.secrets[n.Name],
		State:        func(s string) { b.opts.Progress.State(n.Name, s) },
	}
	job.Parent = b.rootfs(ctx, n.Root(), chain[:len(chain)-1], t)
	for i, p := range n.ImportNodes {
		if p == nil {
			continue
		}
		if job.ImageImports[i], err = b.remoteImageImport(ctx, p, n.Image.Steps()[i], t); err != nil {
			return fmt.Errorf("image %q: import at %s from %s: %w", n.Name, n.Image.Steps()[i].Pos, p.Name, err)
		}
	}
	w := newPrefixWriter(b.con, n.Name, 20)
	job.Out = newMaskWriter(b.stepOutput(n, w), job.Secrets)
	job.Layer = func(r io.Reader) error {
		if err := emptyFolder(ws.Upper); err != nil {
			return err
		}
		defer timings.Phase("backend: unpack the layer of " + n.Name)()
		return layer.UnpackStream(ctx, r, "the exported layer", ws.Upper, unpackOptions(false))
	}
	solved := timings.Phase("backend: run " + n.Name)
	err = b.opts.Backend.Run(ctx, job)
	solved()
	flushMask(job.Out)
	w.Flush()
	if err != nil {
		var sf *StepFailed
		if errors.As(err, &sf) && sf.Index >= 0 && sf.Index < len(job.Steps) {
			se := &sandbox.StepError{Index: sf.Index, Where: job.Steps[sf.Index].Pos.String(), ExitCode: sf.ExitCode}
			if sf.ExitCode < 0 {
				se.Message = sf.Message
			}
			return b.stepFailure(n, se, w)
		}
		return fmt.Errorf("image %q: %s: %w", n.Name, b.opts.Backend, err)
	}
	return nil
}

// emptyFolder removes what dir holds, keeping dir.
func emptyFolder(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// remoteImageImport is the source of step, an import from image p: p's root
// file system in tar layers of type t, and the kind of what step takes
// from it, read from p's layer folders here.
func (b *builder) remoteImageImport(ctx context.Context, p *dsl.Node, step dsl.Step, t layertype.Type) (ImageImport, error) {
	src, ok := step.Import.Source.(*dsl.ImageSource)
	if !ok {
		return ImageImport{}, fmt.Errorf("%T is not an import from an image", step.Import.Source)
	}
	dirs, err := b.built(ctx, p)
	if err != nil {
		return ImageImport{}, err
	}
	slices.Reverse(dirs)
	rel := strings.TrimPrefix(path.Clean(src.Path), "/")
	if rel == "" {
		rel = "."
	}
	fi, err := fs.Stat(storage.MergedFS(dirs), rel)
	if err != nil {
		return ImageImport{}, fmt.Errorf("%s is not in image %s: %w", src.Path, p.Name, err)
	}
	return ImageImport{Rootfs: b.rootfs(ctx, p.Root(), p.Chain(), t), Folder: fi.IsDir(), Mode: unixmode.Bits(fi.Mode())}, nil
}

// runOnBackend is run for an image whose steps the backend runs: the
// same workspace, record and commit as a local run, with the upper dir
// made from the backend's layer.
func (b *builder) runOnBackend(ctx context.Context, n *dsl.Node) (*storage.Record, error) {
	ws, err := b.store.NewWorkspace(n.Name)
	if err != nil {
		return nil, err
	}
	defer b.discard(ctx, ws)
	env, workDir, err := b.stepEnv(ctx, n)
	if err != nil {
		return nil, err
	}
	// The parent's folders, here, tell the mount points the backend's
	// runtime made from what the parent holds; the SBOM and the label
	// scripts read them too. A base is unpacked while the backend runs.
	type lowersResult struct {
		dirs []string
		err  error
	}
	parent := make(chan lowersResult, 1)
	go func() {
		dirs, err := b.lowers(ctx, n)
		parent <- lowersResult{dirs, err}
	}()
	err = b.runRemote(ctx, n, ws, env, workDir)
	lr := <-parent
	if err != nil {
		return nil, err
	}
	lowers, err := lr.dirs, lr.err
	if err != nil {
		return nil, err
	}
	if err := dropMountPoints(ws.Upper, lowers, mountPoints(n)); err != nil {
		return nil, fmt.Errorf("image %q: %w", n.Name, err)
	}
	empty, err := layer.Unchanged(ws.Upper)
	if err != nil {
		return nil, err
	}
	// The label scripts run here, over the layer the backend made.
	return b.commitSteps(ctx, n, ws, empty, lowers)
}

// mountPoints are the paths a backend's container mounts something on
// for n's steps: its runtime's file systems, the step scripts, the
// secrets and cache mounts. Locally the sandbox's skeleton supplies them,
// so they never reach the layer.
func mountPoints(n *dsl.Node) []string {
	mps := []string{"/dev", "/proc", "/sys", "/etc/hosts", "/etc/resolv.conf", "/run/secrets"}
	for _, c := range n.Image.CacheMounts() {
		mps = append(mps, c.Dest)
	}
	return mps
}

// dropMountPoints removes from upper the mount points (and the folders
// made for them) that a backend's container left behind: an empty folder
// or file at one of paths, or above one, that the parent's root file
// system (lowers, top first) does not have. What the steps wrote there
// is kept: only empty ones go.
func dropMountPoints(upper string, lowers []string, paths []string) error {
	bottomFirst := slices.Clone(lowers)
	slices.Reverse(bottomFirst)
	parent := storage.MergedFS(bottomFirst)
	// Nothing under /.strata is ever part of an image (dsl.ImportDir):
	// locally it is the sandbox's own mount.
	if _, err := fs.Stat(parent, ".strata"); err != nil {
		if err := os.RemoveAll(filepath.Join(upper, ".strata")); err != nil {
			return err
		}
	}
	for _, p := range paths {
		for rel := strings.TrimPrefix(path.Clean(p), "/"); rel != "." && rel != ""; rel = path.Dir(rel) {
			if _, err := fs.Stat(parent, rel); err == nil {
				break
			}
			host := filepath.Join(upper, filepath.FromSlash(rel))
			fi, err := os.Lstat(host)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return err
			}
			if fi.Mode().IsRegular() && fi.Size() == 0 || fi.IsDir() {
				// os.Remove fails on a folder that holds something: kept.
				if err := os.Remove(host); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
					return err
				}
				continue
			}
			break
		}
	}
	return nil
}
