package driver

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// module is a Go module whose source lives on disk, so its packages must be
// hashed file by file rather than trusted to go.sum.
type module struct {
	Path string // module path from the module line
	Dir  string // absolute folder holding go.mod
}

// workspace is what the go command will see when building in a folder: the
// module that holds it plus every other module whose source is local.
type workspace struct {
	Main  module
	Local []module // includes Main; longest path first so lookups find the innermost
	// Files are the module-level files (go.mod, go.sum, go.work, ...) whose
	// content is part of the cache key.
	Files []string
	// Cached maps required module paths to their "path@version" in the
	// module cache (after non-local replaces), for locating the dsl source.
	Cached map[string]string
}

// errNoModule is wrapped by findWorkspace when no go.mod encloses the folder.
var errNoModule = errors.New("no go.mod found")

// findWorkspace walks up from dir (absolute) to the enclosing go.mod and
// collects the local modules a build of dir can import from.
func findWorkspace(dir string) (*workspace, error) {
	modDir, err := moduleDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (the definitions must be a package of a Go module)", err)
	}
	ws := &workspace{Cached: map[string]string{}}
	main, err := ws.addModule(modDir)
	if err != nil {
		return nil, err
	}
	ws.Main = main

	if work := findGoWork(dir); work != "" {
		if err := ws.addWorkFile(work); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(ws.Local, func(i, j int) bool { return len(ws.Local[i].Path) > len(ws.Local[j].Path) })
	return ws, nil
}

// moduleDir walks up from dir (absolute; it need not exist) to the
// folder of the enclosing go.mod.
func moduleDir(dir string) (string, error) {
	for d := dir; ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s: %w in it or any parent folder", dir, errNoModule)
		}
		d = parent
	}
}

// FindModule returns the folder and the module path of the Go module that
// holds dir (absolute; it need not exist yet).
func FindModule(dir string) (root, path string, err error) {
	root, err = moduleDir(dir)
	if err != nil {
		return "", "", err
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", "", err
	}
	if path = parseModFile(data).module; path == "" {
		return "", "", fmt.Errorf("%s: no module line", filepath.Join(root, "go.mod"))
	}
	return root, path, nil
}

// addModule reads the go.mod in dir, records it and follows its local
// replace directives (one level: replaced modules' own replaces are ignored
// by the go command too).
func (ws *workspace) addModule(dir string) (module, error) {
	gomod := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(gomod)
	if err != nil {
		return module{}, fmt.Errorf("reading %s: %w", gomod, err)
	}
	f := parseModFile(data)
	if f.module == "" {
		return module{}, fmt.Errorf("%s: no module line", gomod)
	}
	m := module{Path: f.module, Dir: dir}
	if ws.has(m) {
		return m, nil
	}
	ws.Local = append(ws.Local, m)
	ws.Files = append(ws.Files, gomod, filepath.Join(dir, "go.sum"), filepath.Join(dir, "vendor", "modules.txt"))
	for p, v := range f.requires {
		if _, ok := ws.Cached[p]; !ok {
			ws.Cached[p] = p + "@" + v
		}
	}
	for p, v := range f.cacheReplaces {
		ws.Cached[p] = v
	}
	for _, r := range f.replaces {
		ws.addReplace(dir, r)
	}
	return m, nil
}

// addReplace records a replace directive whose target is a folder. The
// replaced module is known by the path being replaced, which is what import
// paths use.
func (ws *workspace) addReplace(base string, r [2]string) {
	if !isLocalPath(r[1]) {
		return
	}
	dir := r[1]
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	m := module{Path: r[0], Dir: filepath.Clean(dir)}
	if ws.has(m) {
		return
	}
	ws.Local = append(ws.Local, m)
	ws.Files = append(ws.Files, filepath.Join(m.Dir, "go.mod"), filepath.Join(m.Dir, "go.sum"))
	delete(ws.Cached, r[0]) // its source is local, not in the module cache
}

func (ws *workspace) has(m module) bool {
	for _, l := range ws.Local {
		if l.Path == m.Path {
			return true
		}
	}
	return false
}

// addWorkFile adds the modules and replaces of a go.work file.
func (ws *workspace) addWorkFile(work string) error {
	data, err := os.ReadFile(work)
	if err != nil {
		return fmt.Errorf("reading %s: %w", work, err)
	}
	ws.Files = append(ws.Files, work, work+".sum")
	f := parseModFile(data)
	base := filepath.Dir(work)
	for _, use := range f.uses {
		dir := use
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if _, err := ws.addModule(filepath.Clean(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: use %s: %w", work, use, err)
		}
	}
	for _, r := range f.replaces {
		ws.addReplace(base, r)
	}
	return nil
}

// findGoWork mirrors the go command: GOWORK=off disables workspaces, a path
// names the file, and otherwise go.work is searched upwards from dir.
func findGoWork(dir string) string {
	switch gowork := os.Getenv("GOWORK"); gowork {
	case "off":
		return ""
	case "":
	default:
		return gowork
	}
	for {
		p := filepath.Join(dir, "go.work")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// localDir returns the folder of an import path when a local module
// provides it.
func (ws *workspace) localDir(importPath string) (string, bool) {
	for _, m := range ws.Local {
		if importPath == m.Path {
			return m.Dir, true
		}
		if strings.HasPrefix(importPath, m.Path+"/") {
			return filepath.Join(m.Dir, filepath.FromSlash(importPath[len(m.Path)+1:])), true
		}
	}
	return "", false
}

// importPath returns the import path of the package in dir (absolute).
func (ws *workspace) importPath(dir string) (string, error) {
	rel, err := filepath.Rel(ws.Main.Dir, dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", dir, err)
	}
	if rel == "." {
		return ws.Main.Path, nil
	}
	return ws.Main.Path + "/" + filepath.ToSlash(rel), nil
}

// modFile is the little of go.mod and go.work that the driver needs.
type modFile struct {
	module        string
	requires      map[string]string // path -> version
	cacheReplaces map[string]string // path -> "newpath@version"
	replaces      [][2]string       // old path, new path or folder
	uses          []string
}

// parseModFile reads module, require, replace and use directives in both
// their single-line and block forms. It is deliberately lenient: a file the
// go command rejects will fail the build with the go command's own message.
func parseModFile(data []byte) modFile {
	f := modFile{requires: map[string]string{}, cacheReplaces: map[string]string{}}
	block := ""
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := string(line)
		if i := strings.Index(s, "//"); i >= 0 {
			s = s[:i]
		}
		fields := strings.Fields(s)
		if len(fields) == 0 {
			continue
		}
		if block != "" {
			if fields[0] == ")" {
				block = ""
				continue
			}
			f.directive(block, fields)
			continue
		}
		if len(fields) == 2 && fields[1] == "(" {
			block = fields[0]
			continue
		}
		f.directive(fields[0], fields[1:])
	}
	return f
}

func (f *modFile) directive(verb string, args []string) {
	for i := range args {
		args[i] = unquote(args[i])
	}
	switch verb {
	case "module":
		if len(args) > 0 {
			f.module = args[0]
		}
	case "require":
		if len(args) >= 2 {
			f.requires[args[0]] = args[1]
		}
	case "use":
		if len(args) > 0 {
			f.uses = append(f.uses, args[0])
		}
	case "replace":
		for i, a := range args {
			if a == "=>" && i > 0 && i+1 < len(args) {
				f.replaces = append(f.replaces, [2]string{args[0], args[i+1]})
				if !isLocalPath(args[i+1]) && i+2 < len(args) {
					f.cacheReplaces[args[0]] = args[i+1] + "@" + args[i+2]
				}
			}
		}
	}
}

func unquote(s string) string {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "`") {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// isLocalPath reports whether a replace target is a folder; the go command
// treats only these prefixes (and absolute paths) as such.
func isLocalPath(p string) bool {
	return filepath.IsAbs(p) || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") ||
		strings.HasPrefix(p, `.\`) || strings.HasPrefix(p, `..\`) || p == "." || p == ".."
}
