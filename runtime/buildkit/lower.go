package buildkit

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/unixmode"
	"github.com/strata-build/strata/runtime"
)

// graph is one image's LLB: the DiffOp of its steps' changes over its
// parent, the local folders its imports send through the session, and
// the custom names that tie BuildKit's vertices back to the steps.
type graph struct {
	state llb.State
	// rootfs is the image's root file system after its steps, which the
	// images built on it in the same build start from.
	rootfs  llb.State
	locals  map[string]fsutil.FS
	secrets map[string][]byte
	// steps maps a vertex's custom name to its step's index.
	steps map[string]int
	// inherited are the names of the steps of the images this graph
	// chains from (rootfsState): their vertices must come from the
	// daemon's cache.
	inherited map[string]bool
	// noChain reads every root file system from the store.
	noChain bool
}

// rootfsState is the state of r: what the daemon made of it earlier in
// this build, with the local folders and secrets its graph reads, or the
// image in the store, read through the session.
func (b *Backend) rootfsState(r runtime.Rootfs, g *graph) (llb.State, error) {
	b.mu.Lock()
	m, ok := b.made[r.Key]
	b.mu.Unlock()
	if ok && r.Key != "" && !g.noChain {
		maps.Copy(g.locals, m.locals)
		maps.Copy(g.secrets, m.secrets)
		maps.Copy(g.inherited, m.inherited)
		for name := range m.steps {
			g.inherited[name] = true
		}
		return m.rootfs, nil
	}
	d, err := r.Manifest()
	if err != nil || d == "" {
		return llb.Scratch(), err
	}
	return rootfs(d), nil
}

// lower makes job's LLB graph. The steps run as locally (runtime/sandbox):
// a script at /.strata/step-N run by `/bin/sh -xe` or its own #! line,
// in the host's network, with the steps' environment and working
// directory, every import's source readable at /.strata/imports/NAME;
// imports are copied as root, owned by UID:GID (0:0 unless set), a
// folder's contents merged into Dest.
func (b *Backend) lower(job *runtime.Job, noChain bool) (*graph, error) {
	g := &graph{locals: map[string]fsutil.FS{}, secrets: map[string][]byte{}, steps: map[string]int{}, inherited: map[string]bool{}, noChain: noChain}
	parent, err := b.rootfsState(job.Parent, g)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(job.Steps))
	sources := map[int]source{}
	last := map[string]int{} // import name → its last step
	for i, s := range job.Steps {
		names[i] = fmt.Sprintf("%s: step %d/%d (%s)", job.Image, i+1, len(job.Steps), s.Pos)
		g.steps[names[i]] = i
		if s.Import == nil {
			continue
		}
		src, err := b.source(g, job, i, s, names[i])
		if err != nil {
			return nil, fmt.Errorf("image %q: step %d (%s): %w", job.Image, i+1, s.Pos, err)
		}
		sources[i], last[src.name] = src, i
	}
	run := []llb.RunOption{llb.Network(llb.NetModeHost), llb.Hostname(job.Image)}
	for _, kv := range job.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "TERM" {
			// The client's terminal would be in BuildKit's cache key.
			continue
		}
		run = append(run, llb.AddEnv(k, v))
	}
	if job.WorkDir != "" {
		run = append(run, llb.Dir(job.WorkDir))
	}
	for _, c := range job.Caches {
		// Locked, as strata locks a cache mount for one image's steps.
		run = append(run, llb.AddMount(c.Dest, llb.Scratch(), llb.AsPersistentCacheDir("strata-"+c.Name, llb.CacheMountLocked)))
	}
	for _, s := range job.Secrets {
		// By image: two images may name different secrets alike, and
		// an image's graph carries its ancestors'.
		id := job.Image + "/" + s.Name
		g.secrets[id] = s.Value
		run = append(run, llb.AddSecret("/run/secrets/"+s.Name, llb.SecretID(id), llb.SecretFileOpt(0, 0, 0o400)))
	}
	for _, i := range slices.Sorted(maps.Values(last)) {
		src := sources[i]
		run = append(run, llb.AddMount(path.Join(dsl.ImportDir, src.name), src.st, llb.SourcePath(src.path), llb.Readonly))
	}
	st := &opChain{st: parent}
	if job.WorkDir != "" && job.WorkDir != "/" {
		st.file(llb.Mkdir(job.WorkDir, 0o755, llb.WithParents(true)), job.Image+": working directory "+job.WorkDir)
	}
	for i, s := range job.Steps {
		if s.Import == nil {
			st.run(i, s.Script, names[i], run)
		} else {
			copyStep(st, sources[i], s.Import, names[i])
		}
	}
	g.rootfs = st.st
	lower := parent
	if st.ops > 1 {
		// A DiffOp whose lower is an ancestor of its upper exports the
		// layers in between, one per operation. This lower is the
		// parent with a folder made and removed: the same files, but no
		// ancestor, so BuildKit compares the two trees and exports one
		// layer, as a local build commits one. One operation is one
		// layer already, which BuildKit takes from its overlay's upper
		// dir without walking the trees.
		lowerDir := "/.strata-diff-lower"
		lower = parent.File(llb.Mkdir(lowerDir, 0o700)).File(llb.Rm(lowerDir), llb.WithCustomName(job.Image+": parent"))
	}
	g.state = llb.Diff(lower, st.st, llb.WithCustomName(job.Image+": one layer"))
	return g, nil
}

// opChain is the state of an image's steps as they are added, and how
// many operations they took.
type opChain struct {
	st  llb.State
	ops int
}

func (c *opChain) file(a *llb.FileAction, name string) {
	c.st = c.st.File(a, llb.WithCustomName(name))
	c.ops++
}

// rootfs is the image whose manifest m is in the store, read through the
// session.
func rootfs(m digest.Digest) llb.State {
	return llb.OCILayout("strata/rootfs@"+m.String(), llb.OCIStore("", storeID))
}

func (c *opChain) run(i int, script, name string, run []llb.RunOption) {
	file := fmt.Sprintf("/.strata/step-%d", i+1)
	argv := []string{"/bin/sh", "-xe", file}
	mode := os.FileMode(0o644)
	if strings.HasPrefix(script, "#!") {
		argv, mode = []string{file}, 0o755
	}
	scriptState := llb.Scratch().File(llb.Mkfile("/step", mode, []byte(script)), llb.WithCustomName(name+": script"))
	opts := append([]llb.RunOption{
		llb.Args(argv),
		llb.AddMount(file, scriptState, llb.SourcePath("/step"), llb.Readonly),
		llb.WithCustomName(name),
	}, run...)
	c.st = c.st.Run(opts...).Root()
	c.ops++
}

// source is what an import copies: a state and the path in it, whether
// it is a folder, and the name the steps see it under in dsl.ImportDir.
type source struct {
	st     llb.State
	path   string
	folder bool
	name   string
	// mode is a folder's own mode, which Dest gets when it is made.
	mode os.FileMode
}

// source is the source of import step i: a local file or folder sent
// through the session, a URL BuildKit downloads and checks against its
// sha256, or a path of another image's root file system.
func (b *Backend) source(g *graph, job *runtime.Job, i int, s dsl.Step, name string) (source, error) {
	switch from := s.Import.Source.(type) {
	case *dsl.LocalSource:
		fi, err := os.Stat(from.Path)
		if err != nil {
			return source{}, err
		}
		// By image, as an image's graph carries its ancestors' imports.
		local := fmt.Sprintf("%s/step-%d", job.Image, i+1)
		fsys, file, err := localFS(from, fi.IsDir())
		if err != nil {
			return source{}, err
		}
		g.locals[local] = fsys
		// The shared key lets the daemon send only what changed since
		// the last build of this import.
		st := llb.Local(local, llb.SharedKeyHint(job.Image+":"+from.Path), llb.WithCustomName(name+": send "+from.Path))
		base := filepath.Base(from.Path)
		if fi.IsDir() {
			return source{st: st, path: "/", folder: true, name: base, mode: unixmode.FileMode(unixmode.Bits(fi.Mode()))}, nil
		}
		return source{st: st, path: file, name: base}, nil
	case *dsl.URLSource:
		d, ok := job.Imports[i]
		if !ok {
			return source{}, fmt.Errorf("URL %s has no sha256 in the graph", from.URL)
		}
		base := runtime.URLBase(from.URL)
		st := llb.HTTP(from.URL, llb.Checksum(d), llb.Filename(base), llb.Chmod(0o644), llb.WithCustomName(name+": download "+from.URL))
		return source{st: st, path: "/" + base, name: base}, nil
	case *dsl.ImageSource:
		im, ok := job.ImageImports[i]
		if !ok {
			return source{}, fmt.Errorf("image %s has no root file system to import from", from.Image.Name())
		}
		st, err := b.rootfsState(im.Rootfs, g)
		if err != nil {
			return source{}, err
		}
		base := path.Base(path.Clean(from.Path))
		if base == "/" {
			base = "rootfs"
		}
		return source{st: st, path: from.Path, folder: im.Folder, name: base, mode: unixmode.FileMode(im.Mode)}, nil
	}
	return source{}, fmt.Errorf("imports of %T are not supported by the BuildKit backend", s.Import.Source)
}

// copyStep copies src into st as the import step imp says, and as the
// sandbox copies (runtime/sandbox/copy.go): missing parents of Dest are
// made as mkdir -p makes them (root, 0755); a folder's Dest, when
// missing, gets the folder's mode (Mode when set) and UID:GID, while an
// existing one keeps its own; what the copy makes is UID:GID's.
// BuildKit's copy would make parents owned by UID:GID, so they are made
// first.
func copyStep(st *opChain, src source, imp *dsl.ImportStep, name string) {
	uid, gid := 0, 0
	if imp.UID != nil {
		uid = *imp.UID
	}
	if imp.GID != nil {
		gid = *imp.GID
	}
	dest := imp.Dest
	if !src.folder && strings.HasSuffix(dest, "/") {
		dest = path.Join(dest, src.name)
	}
	dest = path.Clean(dest)
	if dir := path.Dir(dest); dir != "/" {
		st.file(llb.Mkdir(dir, 0o755, llb.WithParents(true)), name+": parents")
	}
	info := &llb.CopyInfo{
		CreateDestPath: true,
		ChownOpt:       &llb.ChownOpt{User: &llb.UserOpt{UID: uid}, Group: &llb.UserOpt{UID: gid}},
	}
	if src.folder {
		mode := src.mode
		if imp.Mode != nil {
			mode = unixmode.FileMode(*imp.Mode)
		}
		if dest != "/" {
			st.file(llb.Mkdir(dest, mode, llb.WithParents(true), llb.WithUIDGID(uid, gid)), name+": folder")
		}
		info.CopyDirContentsOnly = true
	} else if imp.Mode != nil {
		info.Mode = &llb.ChmodOpt{Mode: unixmode.FileMode(*imp.Mode)}
	}
	st.file(llb.Copy(src.st, src.path, dest, info), name)
}
