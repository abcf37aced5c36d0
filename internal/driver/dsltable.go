package driver

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// dslTable records, from the dsl package's source, whether each exported
// function and each method of Image returns *Image.
type dslTable struct {
	funcs, methods map[string]bool
}

// returnsImage answers from the table when it knows the name and says yes
// otherwise: a name the table lacks (no source found, or a different
// version) falls back to the purely syntactic rule, and a wrong "yes" is
// reported by the compiler at the variable while a wrong "no" would silently
// drop a target.
func (t *dslTable) returnsImage(method bool, name string) bool {
	if t == nil {
		return true
	}
	m := t.funcs
	if method {
		m = t.methods
	}
	known, ok := m[name]
	return !ok || known
}

// loadDSLTable parses the dsl package's declarations if its source is on
// disk. It returns nil when it is not.
func loadDSLTable(ws *workspace, dslImport string) *dslTable {
	dir := sourceDir(ws, dslImport)
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	ctxt := buildContext()
	fset := token.NewFileSet()
	t := &dslTable{funcs: map[string]bool{}, methods: map[string]bool{}}
	self := &fileInfo{dslDot: true} // inside dsl, Image is unqualified
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := ctxt.MatchFile(dir, name); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			returns := singleResult(fd.Type, self)
			switch {
			case fd.Recv == nil:
				t.funcs[fd.Name.Name] = returns
			case len(fd.Recv.List) == 1 && isImageRecv(fd.Recv.List[0].Type):
				t.methods[fd.Name.Name] = returns
			}
		}
	}
	return t
}

func isImageRecv(e ast.Expr) bool {
	if star, ok := e.(*ast.StarExpr); ok {
		e = star.X
	}
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "Image"
}

// sourceDir finds a package's folder (dsl's, or a library's the
// definitions call) the way the go command would resolve it, without
// running it: vendor, a local module, or the module cache at the required
// version. It returns "" when the source is not on disk.
func sourceDir(ws *workspace, importPath string) string {
	if ws == nil {
		return ""
	}
	exists := func(dir string) bool {
		fi, err := os.Stat(dir)
		return err == nil && fi.IsDir()
	}
	if d := filepath.Join(ws.Main.Dir, "vendor", filepath.FromSlash(importPath)); exists(d) {
		return d
	}
	if d, ok := ws.localDir(importPath); ok {
		if exists(d) {
			return d
		}
		return ""
	}
	best := ""
	for p := range ws.Cached {
		if (importPath == p || strings.HasPrefix(importPath, p+"/")) && len(p) > len(best) {
			best = p
		}
	}
	if best == "" {
		return ""
	}
	cache := modCacheDir()
	if cache == "" {
		return ""
	}
	at := ws.Cached[best]
	d := filepath.Join(cache, filepath.FromSlash(escapeModPath(at)), filepath.FromSlash(strings.TrimPrefix(importPath[len(best):], "/")))
	if exists(d) {
		return d
	}
	return ""
}

// modCacheDir is where the go command keeps module sources by default.
func modCacheDir() string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		gopath = filepath.Join(home, "go")
	}
	return filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
}

// escapeModPath applies the module cache's case encoding: each upper-case
// letter becomes '!' followed by its lower-case form.
func escapeModPath(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
