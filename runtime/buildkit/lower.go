package buildkit

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
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
	state  llb.State
	locals map[string]fsutil.FS
	// steps maps a vertex's custom name to its step's index.
	steps map[string]int
}

// lower makes job's LLB graph. The steps run as locally (runtime/sandbox):
// a script at /.strata/step-N run by `/bin/sh -xe` or its own #! line,
// in the host's network, with the steps' environment and working
// directory; imports are copied as root, owned by UID:GID (0:0 unless
// set), a folder's contents merged into Dest.
func lower(ctx context.Context, job *runtime.Job) (*graph, error) {
	g := &graph{locals: map[string]fsutil.FS{}, steps: map[string]int{}}
	parent := llb.Scratch()
	if job.Parent != "" {
		parent = rootfs(job.Parent)
	}
	var env []llb.RunOption
	for _, kv := range job.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "TERM" {
			// The client's terminal would be in BuildKit's cache key.
			continue
		}
		env = append(env, llb.AddEnv(k, v))
	}
	st := parent
	if job.WorkDir != "" && job.WorkDir != "/" {
		st = st.File(llb.Mkdir(job.WorkDir, 0o755, llb.WithParents(true)), llb.WithCustomName(job.Image+": working directory "+job.WorkDir))
	}
	for i, s := range job.Steps {
		name := fmt.Sprintf("%s: step %d/%d (%s)", job.Image, i+1, len(job.Steps), s.Pos)
		g.steps[name] = i
		var err error
		if s.Import == nil {
			st = runStep(st, job, i, s.Script, name, env)
		} else if st, err = g.importStep(st, job, i, s, name); err != nil {
			return nil, fmt.Errorf("image %q: step %d (%s): %w", job.Image, i+1, s.Pos, err)
		}
	}
	// A DiffOp whose lower is an ancestor of its upper exports the
	// layers in between, one per operation. The lower here is the parent
	// with a folder made and removed: the same files, but no ancestor,
	// so BuildKit compares the two trees and exports one layer, as a
	// local build commits one.
	lowerDir := "/.strata-diff-lower"
	lower := parent.File(llb.Mkdir(lowerDir, 0o700)).File(llb.Rm(lowerDir), llb.WithCustomName(job.Image+": parent"))
	g.state = llb.Diff(lower, st, llb.WithCustomName(job.Image+": one layer"))
	return g, nil
}

// rootfs is the image whose manifest m is in the store, read through the
// session.
func rootfs(m digest.Digest) llb.State {
	return llb.OCILayout("strata/rootfs@"+m.String(), llb.OCIStore("", storeID))
}

func runStep(st llb.State, job *runtime.Job, i int, script, name string, env []llb.RunOption) llb.State {
	file := fmt.Sprintf("/.strata/step-%d", i+1)
	argv := []string{"/bin/sh", "-xe", file}
	mode := os.FileMode(0o644)
	if strings.HasPrefix(script, "#!") {
		argv, mode = []string{file}, 0o755
	}
	scriptState := llb.Scratch().File(llb.Mkfile("/step", mode, []byte(script)), llb.WithCustomName(name+": script"))
	opts := []llb.RunOption{
		llb.Args(argv),
		llb.Network(llb.NetModeHost),
		llb.Hostname(job.Image),
		llb.AddMount(file, scriptState, llb.SourcePath("/step"), llb.Readonly),
		llb.WithCustomName(name),
	}
	opts = append(opts, env...)
	if job.WorkDir != "" {
		opts = append(opts, llb.Dir(job.WorkDir))
	}
	for _, c := range job.Caches {
		// Locked, as strata locks a cache mount for one image's steps.
		opts = append(opts, llb.AddMount(c.Dest, llb.Scratch(), llb.AsPersistentCacheDir("strata-"+c.Name, llb.CacheMountLocked)))
	}
	for _, s := range job.Secrets {
		opts = append(opts, llb.AddSecret("/run/secrets/"+s.Name, llb.SecretID(s.Name), llb.SecretFileOpt(0, 0, 0o400)))
	}
	return st.Run(opts...).Root()
}

// importStep copies an import's source into st: a local file or folder
// sent through the session, a URL BuildKit downloads and checks against
// its sha256, or a path of another image's root file system.
func (g *graph) importStep(st llb.State, job *runtime.Job, i int, s dsl.Step, name string) (llb.State, error) {
	imp := s.Import
	var src llb.State
	var srcPath string
	folder := false
	switch from := imp.Source.(type) {
	case *dsl.LocalSource:
		fi, err := os.Stat(from.Path)
		if err != nil {
			return st, err
		}
		local := fmt.Sprintf("step-%d", i+1)
		fsys, err := localFS(from, fi.IsDir())
		if err != nil {
			return st, err
		}
		g.locals[local] = fsys
		// The shared key lets the daemon send only what changed since
		// the last build of this import.
		src = llb.Local(local, llb.SharedKeyHint(job.Image+":"+from.Path), llb.WithCustomName(name+": send "+from.Path))
		srcPath, folder = "/", fi.IsDir()
		if !folder {
			srcPath = "/" + filepath.Base(from.Path)
		}
	case *dsl.URLSource:
		d, ok := job.Imports[i]
		if !ok {
			return st, fmt.Errorf("URL %s has no sha256 in the graph", from.URL)
		}
		base := runtime.URLBase(from.URL)
		src = llb.HTTP(from.URL, llb.Checksum(d), llb.Filename(base), llb.Chmod(0o644), llb.WithCustomName(name+": download "+from.URL))
		srcPath = "/" + base
	case *dsl.ImageSource:
		m, ok := job.ImageImports[i]
		if !ok || m == "" {
			return st, fmt.Errorf("image %s has no root file system to import from", from.Image.Name())
		}
		src, srcPath = rootfs(m), from.Path
		// A folder's contents are merged as a local folder's are.
		folder = true
	default:
		return st, fmt.Errorf("imports of %T are not supported by the BuildKit backend", imp.Source)
	}
	uid, gid := 0, 0
	if imp.UID != nil {
		uid = *imp.UID
	}
	if imp.GID != nil {
		gid = *imp.GID
	}
	dest := imp.Dest
	if !folder && strings.HasSuffix(dest, "/") {
		dest = path.Join(dest, path.Base(srcPath))
	}
	info := &llb.CopyInfo{
		CopyDirContentsOnly: true,
		CreateDestPath:      true,
		ChownOpt:            &llb.ChownOpt{User: &llb.UserOpt{UID: uid}, Group: &llb.UserOpt{UID: gid}},
	}
	if imp.Mode != nil && !folder {
		info.Mode = &llb.ChmodOpt{Mode: unixmode.FileMode(*imp.Mode)}
	}
	st = st.File(llb.Copy(src, srcPath, dest, info), llb.WithCustomName(name))
	if imp.Mode != nil && folder {
		// Mode is that of Dest itself, not of what it holds: copy an
		// empty folder of that mode onto it.
		dir := llb.Scratch().File(llb.Mkdir("/d", unixmode.FileMode(*imp.Mode), llb.WithUIDGID(uid, gid)))
		st = st.File(llb.Copy(dir, "/d", dest, &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}), llb.WithCustomName(name+": mode"))
	}
	return st, nil
}
