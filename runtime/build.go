package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/runtime/display"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/registry"
)

// Options configure Build.
type Options struct {
	Store  *storage.Store
	Layout *storage.Layout
	// Out receives the build log and every step's output, one prefixed
	// line at a time.
	Out io.Writer
	// NoCache rebuilds every selected image.
	NoCache bool
	// CachedOnly fails an image the store does not hold instead of
	// running its steps: strata publish without --build tags what is
	// built and must never build, even when the store changed since it
	// planned.
	CachedOnly bool
	// Jobs bounds how many images build at once (default: processors).
	Jobs int
	// FailFast stops every other image as soon as one fails.
	FailFast bool
	// SourceDateEpoch is written as every timestamp of the output.
	SourceDateEpoch int64
	// Annotations are added to every manifest.
	Annotations map[string]string
	// NoSBOM leaves out the SBOM strata stores beside every image
	// manifest, as its referrer, in the output layout.
	NoSBOM bool
	// NoVerity leaves the dm-verity tree off squashfs and erofs layers,
	// which carry one by default.
	NoVerity bool
	// SquashfsWriter picks the squashfs encoder (layer.SquashfsNative,
	// the default, or layer.SquashfsMksquashfs).
	SquashfsWriter string
	// RegistryCache shares the build cache through registries.
	RegistryCache
	// Progress, when set, shows the build live on a terminal.
	Progress *display.Display
	// Backend, when set, runs the steps instead of this machine's
	// sandbox (backend.go).
	Backend Backend
	// ShellOnFailure opens a shell in a failed step's container before
	// the failure is reported (see shell.go); ShellIO, when set, replaces
	// the terminal for it.
	ShellOnFailure bool
	ShellIO        *ShellIO
	// Registry holds credentials and transport settings for pulling
	// registry bases (bases.go).
	Registry registry.Options
}

// Status is how an image's build ended.
type Status string

// The statuses of a Result.
const (
	Built   Status = "built"
	Cached  Status = "cached"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Result is the outcome for one image.
type Result struct {
	Name   string
	Status Status
	// Reason says why an image was rebuilt, or which dependency failed.
	Reason   string
	Err      error
	Duration time.Duration
	Record   *storage.Record
}

// BuildError is returned when at least one image failed.
type BuildError struct{ Results []Result }

func (e *BuildError) Error() string {
	var failed []string
	for _, r := range e.Results {
		if r.Status == Failed {
			failed = append(failed, r.Err.Error())
		}
	}
	if len(failed) == 1 {
		return failed[0]
	}
	return fmt.Sprintf("%d images failed", len(failed))
}

// ExitCode is the exit status strata should end with: a single failed
// step's own exit status, 130 when interrupted, 1 otherwise.
func (e *BuildError) ExitCode() int {
	code := 0
	for _, r := range e.Results {
		if r.Status != Failed {
			continue
		}
		if errors.Is(r.Err, context.Canceled) {
			return 130
		}
		var se *sandbox.StepError
		if code == 0 && errors.As(r.Err, &se) && se.ExitCode > 0 {
			code = se.ExitCode
		} else {
			code = 1
		}
	}
	if code == 0 {
		code = 1
	}
	return code
}

// errFailFast is the cause of the cancellation --fail-fast makes.
var errFailFast = errors.New("another image failed (--fail-fast)")

// Build builds nodes (dependencies first; see dsl.Graph.Select) and tags
// every one that is not build-only in opts.Layout.
func Build(ctx context.Context, nodes []*dsl.Node, opts Options) ([]Result, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	stk, err := newStack(opts.Store)
	if err != nil {
		return nil, err
	}
	b := &builder{
		opts:      opts,
		con:       &console{out: opts.Out},
		ready:     map[*dsl.Node]chan struct{}{},
		layerOK:   map[*dsl.Node]*atomic.Bool{},
		done:      map[*dsl.Node]chan struct{}{},
		results:   map[*dsl.Node]*Result{},
		sem:       make(chan struct{}, opts.Jobs),
		encodeSem: make(chan struct{}, opts.Jobs),
		hooks:     newHooks(opts, nodes),
		stack:     stk,
		decider:   decider{records: stk.store, noCache: opts.NoCache, noVerity: opts.NoVerity, needs: layerNeeds(nodes)},
	}
	stk.bases.registry, stk.bases.downloads = opts.Registry, b.downloadOptions
	stk.epoch, stk.note = opts.SourceDateEpoch, b.con.printf
	stk.noVerity, stk.squashfsWriter = opts.NoVerity, opts.SquashfsWriter
	// A missing secret stops the build before any work (secrets.go).
	if b.secrets, err = ReadSecrets(nodes); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		b.ready[n], b.done[n] = make(chan struct{}), make(chan struct{})
		b.layerOK[n] = new(atomic.Bool)
		b.results[n] = &Result{Name: n.Name}
	}
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b.cancel = func() { cancel(errFailFast) }
	// Recompressions still running once every image ended serve no tag:
	// they stop then.
	earlyCtx, stopEarly := context.WithCancel(ctx)
	defer stopEarly()
	b.bases.recompressEarly(earlyCtx, nodes, opts.Layout != nil)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(b.done[n])
			b.build(ctx, n)
		}()
	}
	wg.Wait()
	stopEarly()
	b.bases.early.Wait()
	b.bases.cache.wait()
	b.hooks.wait()
	if parent.Err() == nil && errors.Is(context.Cause(ctx), errFailFast) {
		// Images stopped because another failed did not fail themselves:
		// report them as skipped, and keep exit status 130 for a real
		// interrupt.
		for _, r := range b.results {
			if r.Status == Failed && errors.Is(r.Err, context.Canceled) {
				r.Status, r.Err = Skipped, nil
				r.Reason = "stopped by --fail-fast after another image failed"
			}
		}
	}

	out := make([]Result, 0, len(nodes))
	failed := false
	for _, n := range nodes {
		r := *b.results[n]
		out = append(out, r)
		failed = failed || r.Status == Failed
	}
	if failed {
		return out, &BuildError{Results: out}
	}
	return out, nil
}

type builder struct {
	opts Options
	con  *console
	// ready is closed when an image's layer folder is made or cannot be,
	// layerOK then says which; done when its build is over.
	ready   map[*dsl.Node]chan struct{}
	layerOK map[*dsl.Node]*atomic.Bool
	done    map[*dsl.Node]chan struct{}
	results map[*dsl.Node]*Result
	// sem bounds the images making their layer folder (running steps),
	// encodeSem those encoding it: each up to Jobs, so encodes share the
	// processors with the steps of the images built on them.
	sem, encodeSem chan struct{}
	cancel         context.CancelFunc

	// stack makes the images' root file systems, and decider says which
	// images need one.
	*stack
	decider

	hooks *hooks // registry caches, logs, live display

	secrets map[string][]sandbox.Secret // by image name; see secrets.go
}

// build builds n in two stages. The first makes its layer folder: found
// in the store, or the steps run and their upper dir committed; the images
// on n start their own steps as soon as it is done. The second encodes
// the folder as the layer types the build needs, beside those images'
// steps, then waits for n's dependencies to end and tags n. Encoding is
// off the critical path: a chain of images costs its steps plus the last
// encode, not every image's steps and encode in turn.
func (b *builder) build(ctx context.Context, n *dsl.Node) {
	res := b.results[n]
	defer b.finished(ctx, n, res)
	markReady := sync.OnceFunc(func() { close(b.ready[n]) })
	defer markReady() // on every failure: the images waiting see no layer
	if why := b.failedDep(n, b.ready, b.hasLayer); why != "" {
		res.Status, res.Reason = Skipped, why
		return
	}
	start := time.Now()
	d, rec, err := b.layerFolder(ctx, n, res)
	if err != nil {
		res.Status, res.Err, res.Duration = Failed, err, time.Since(start)
		b.failed()
		return
	}
	b.layerOK[n].Store(true)
	markReady()

	rec, encoded, err := b.encode(ctx, n, rec)
	res.Duration = time.Since(start)
	if err != nil {
		res.Status, res.Err = Failed, err
		b.failed()
		return
	}
	// n's manifests list its ancestors' layers in every type, so their
	// encodes must be over; and a failure of any dependency (an image n
	// imports from, too) after its layer folder was made is n's as well,
	// as before the folder.
	if why := b.failedDep(n, b.done, b.succeeded); why != "" {
		res.Status, res.Reason = Skipped, why
		return
	}
	if err := b.tag(ctx, n); err != nil {
		res.Status, res.Err = Failed, err
		b.failed()
		return
	}
	res.Record = rec
	if d.action == RunSteps {
		res.Status = Built
		b.con.printf("%s: %s\n", n.Name, builtMessage(res.Reason))
	} else {
		res.Status = Cached
		b.con.printf("%s: %s\n", n.Name, cachedMessage(encoded))
	}
}

// failedDep waits, through chans, for each dependency of n the build
// holds, and says why n is skipped when ok is false for one.
func (b *builder) failedDep(n *dsl.Node, chans map[*dsl.Node]chan struct{}, ok func(*dsl.Node) bool) string {
	for _, d := range n.Deps {
		ch, held := chans[d]
		if !held {
			continue // built by an earlier call, or not selected
		}
		<-ch
		if !ok(d) {
			return fmt.Sprintf("needs %s, which %s", d.Name, b.results[d].Status)
		}
	}
	return ""
}

func (b *builder) hasLayer(n *dsl.Node) bool { return b.layerOK[n].Load() }

func (b *builder) succeeded(n *dsl.Node) bool {
	s := b.results[n].Status
	return s != Failed && s != Skipped
}

// failed stops the other images under --fail-fast.
func (b *builder) failed() {
	if b.opts.FailFast {
		b.cancel()
	}
}

// layerFolder makes n's layer folder, Jobs images at a time, and returns
// the decision and n's record, which may lack blobs of the types the
// build needs.
func (b *builder) layerFolder(ctx context.Context, n *dsl.Node, res *Result) (decision, *storage.Record, error) {
	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return decision{}, nil, fmt.Errorf("image %q: %w", n.Name, ctx.Err())
	}
	b.fromRegistry(ctx, n)
	d, err := b.decide(n)
	if err != nil {
		return d, nil, err
	}
	if d.action != RunSteps {
		return d, d.rec, nil
	}
	res.Reason = d.reason
	if b.opts.CachedOnly {
		return d, nil, fmt.Errorf("image %q needs a build (%s), and nothing is built here", n.Name, res.Reason)
	}
	if b.opts.Backend != nil && len(n.Image.Steps()) > 0 {
		b.con.printf("%s: building on %s (%s)\n", n.Name, b.opts.Backend, res.Reason)
	} else {
		b.con.printf("%s: building (%s)\n", n.Name, res.Reason)
	}
	rec, err := b.run(ctx, n)
	return d, rec, err
}

// encode adds to rec the blobs of the layer types the build needs of n,
// Jobs encodes at a time beside the steps of other images.
func (b *builder) encode(ctx context.Context, n *dsl.Node, rec *storage.Record) (*storage.Record, []layertype.Type, error) {
	if len(missingTypes(rec, b.needs[n], !b.stack.noVerity)) == 0 || rec.Empty {
		return rec, nil, nil
	}
	select {
	case b.encodeSem <- struct{}{}:
		defer func() { <-b.encodeSem }()
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("image %q: %w", n.Name, ctx.Err())
	}
	b.opts.Progress.State(n.Name, "encoding")
	return b.ensureTypes(ctx, n, rec, b.needs[n])
}

func (b *builder) run(ctx context.Context, n *dsl.Node) (*storage.Record, error) {
	if b.opts.Backend != nil && len(n.Image.Steps()) > 0 {
		return b.runOnBackend(ctx, n)
	}
	lowers, err := b.lowers(ctx, n)
	if err != nil {
		return nil, err
	}
	if len(n.Image.Steps()) == 0 {
		// Nothing runs, so nothing changes: no container is needed to
		// say so. The base is in the store now, for the images on it.
		labels, err := b.generateLabels(ctx, n, "", lowers)
		if err != nil {
			return nil, err
		}
		return b.store.Commit(nil, storage.Record{Key: n.Key, Image: n.Name, KeyInputs: n.KeyInputs, Empty: true, Labels: labels}, nil)
	}
	ws, err := b.store.NewWorkspace(n.Name)
	if err != nil {
		return nil, err
	}
	defer b.discard(ctx, ws)

	spec, err := b.stepSpec(ctx, n, lowers, ws)
	if err != nil {
		return nil, err
	}
	// URL and FromImage imports become host paths (sources.go).
	imports, doneImports, err := b.importSources(ctx, n)
	if err != nil {
		return nil, err
	}
	defer doneImports()
	for i, s := range n.Image.Steps() {
		step, err := sandboxStep(s, imports[i])
		if err != nil {
			return nil, fmt.Errorf("image %q: %w", n.Name, err)
		}
		spec.Steps = append(spec.Steps, step)
	}
	for _, bd := range n.Image.Binds() {
		spec.Binds = append(spec.Binds, sandbox.Bind{Source: bd.Source, Dest: bd.Dest, ReadOnly: bd.ReadOnly})
	}
	// Cache mounts are locked until the steps are over (cachemount.go).
	caches, releaseCaches, err := b.cacheMounts(ctx, n)
	if err != nil {
		return nil, err
	}
	defer releaseCaches()
	spec.Binds = append(spec.Binds, caches...)
	spec.Secrets = b.secrets[n.Name]
	// The finisher only says whether the steps changed anything: the
	// folder is encoded once committed (see build).
	spec.Finish, err = finishSpec(commitArg{})
	if err != nil {
		return nil, err
	}
	w := newPrefixWriter(b.con, n.Name, 20)
	stepOut := newMaskWriter(b.stepOutput(n, w), spec.Secrets)
	spec.Stdout, spec.Stderr = stepOut, stepOut
	raw, err := sandbox.Run(ctx, spec)
	flushMask(stepOut)
	w.Flush()
	if err != nil {
		b.debugShell(ctx, spec, err) // --shell-on-failure, before the workspace is discarded
		var se *sandbox.StepError
		if errors.As(err, &se) {
			return nil, b.stepFailure(n, se, w)
		}
		return nil, fmt.Errorf("image %q: %w", n.Name, err)
	}
	out, err := parseCommit(raw)
	if err != nil {
		return nil, fmt.Errorf("image %q: commit: %w", n.Name, err)
	}
	return b.commitSteps(ctx, n, ws, out.Empty, lowers)
}

// stepFailure is the failure of step se of n, with the last lines w
// kept of its output.
func (b *builder) stepFailure(n *dsl.Node, se *sandbox.StepError, w *prefixWriter) *StepFailure {
	tail := w.Tail()
	return &StepFailure{Image: n.Name, Err: se, Tail: tail, Disk: diskFull(b.opts.Store.Root, tail)}
}

// commitSteps commits ws's upper dir, what n's steps changed over lowers
// (nothing when empty), as n's layer folder, with the labels n's label
// scripts give it.
func (b *builder) commitSteps(ctx context.Context, n *dsl.Node, ws *storage.Workspace, empty bool, lowers []string) (*storage.Record, error) {
	rec := storage.Record{Key: n.Key, Image: n.Name, KeyInputs: n.KeyInputs, Empty: empty}
	upper := ws.Upper
	if empty {
		upper = ""
	}
	var err error
	if rec.Labels, err = b.generateLabels(ctx, n, upper, lowers); err != nil {
		return nil, err
	}
	return b.store.Commit(ws, rec, nil)
}

// StepFailure is a failed Run step with the last lines it printed.
type StepFailure struct {
	Image string
	Err   *sandbox.StepError
	Tail  []string
	// Disk says that space ran out, and where, when it did (see
	// diskFull); empty otherwise.
	Disk string
}

func (f *StepFailure) Error() string {
	if f.Disk != "" {
		return fmt.Sprintf("image %q: %v; %s", f.Image, f.Err, f.Disk)
	}
	return fmt.Sprintf("image %q: %v", f.Image, f.Err)
}

// Unwrap returns the step error.
func (f *StepFailure) Unwrap() error { return f.Err }

// sandboxStep lowers a step; hostPath is where the source of an import
// that is not a local file or folder was put (see importSources).
func sandboxStep(s dsl.Step, hostPath string) (sandbox.Step, error) {
	out := sandbox.Step{Where: s.Pos.String()}
	if s.Import == nil {
		out.Script = s.Script
		return out, nil
	}
	var exclude []string
	if src, ok := s.Import.Source.(*dsl.LocalSource); ok {
		hostPath, exclude = src.Path, src.Exclude
	}
	if hostPath == "" {
		return out, fmt.Errorf("step at %s: imports of %T are not supported by this runtime", s.Pos, s.Import.Source)
	}
	out.Copy = &sandbox.Copy{Source: hostPath, Dest: s.Import.Dest, Mode: s.Import.Mode, UID: s.Import.UID, GID: s.Import.GID, Exclude: exclude}
	return out, nil
}

// EpochFromEnv reads SOURCE_DATE_EPOCH from the environment, 0 when unset.
func EpochFromEnv() (int64, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return 0, nil
	}
	e, err := strconv.ParseInt(v, 10, 64)
	if err != nil || e < 0 {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
	}
	return e, nil
}
