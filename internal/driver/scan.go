package driver

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/scanner"
	"go/token"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
)

// Target is one image definition: an exported variable of the definitions
// package that the generated main hands to strata.Main.
type Target struct {
	Var string // Go identifier, e.g. "Hello"
	Doc string // doc comment with whitespace collapsed to single spaces
}

// ErrNoDefinitions is wrapped by the error of [Scan] and [Prepare] when a
// folder holds no image definitions.
var ErrNoDefinitions = errors.New("no exported *dsl.Image variables")

// ErrMainPackage is wrapped by the error of [Scan] and [Prepare] for a
// folder holding package main, which no program can import.
var ErrMainPackage = errors.New("package main cannot hold image definitions")

// definition is a target plus where it is declared, so that a compile error
// the generated main reports for it can point at the user's code instead.
type definition struct {
	Target
	Pos token.Position
}

// scanned is what one pass over the definitions folder learns.
type scanned struct {
	pkgName string
	defs    []definition
	// syntax holds parse errors; the folder cannot compile, and the errors
	// are reported the way the compiler would.
	syntax scanner.ErrorList
}

// Scan parses the Go package in dir and returns its targets in declaration
// order (files in name order). It compiles nothing and runs no process, so
// it suits listing targets. The rule for which variables count is in the
// package documentation.
func Scan(dir string) ([]Target, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	// The module only refines the scan (by locating the dsl source), so a
	// folder outside any module can still be listed.
	ws, _ := findWorkspace(abs)
	s, err := scanPackage(abs, ws, path.Join(DefaultStrataImport, "dsl"))
	if err != nil {
		return nil, err
	}
	if err := s.check(abs); err != nil {
		return nil, err
	}
	targets := make([]Target, len(s.defs))
	for i, d := range s.defs {
		targets[i] = d.Target
	}
	return targets, nil
}

// check turns what the scan found into the errors users need to see.
func (s *scanned) check(dir string) error {
	if len(s.syntax) > 0 {
		return &CompileError{Output: formatSyntax(s.syntax)}
	}
	if s.pkgName == "main" {
		return fmt.Errorf("%w: %s is package main, which Go programs cannot import; put the image definitions in a package of their own", ErrMainPackage, dir)
	}
	if len(s.defs) == 0 {
		return fmt.Errorf("%w in %s", ErrNoDefinitions, dir)
	}
	return nil
}

// buildContext selects files the way the compiled driver will: the driver
// always targets the machine it runs on.
func buildContext() build.Context {
	ctxt := build.Default
	ctxt.GOOS, ctxt.GOARCH = runtime.GOOS, runtime.GOARCH
	return ctxt
}

// varDecl is a package-level variable as written.
type varDecl struct {
	name  string
	file  *fileInfo
	typ   ast.Expr // nil when inferred
	value ast.Expr // nil when absent or one call initialises several names
	doc   *ast.CommentGroup
	pos   token.Pos
}

// fileInfo is what the rule needs to know about the file a var lives in:
// import names are per file.
type fileInfo struct {
	dslName string // local name of the dsl import, "" if not imported
	dslDot  bool   // dsl is dot-imported
}

// scanPackage parses the package in dir. dslImport is the import path of
// the dsl package; ws (may be nil) locates its source to refine the rule.
func scanPackage(dir string, ws *workspace, dslImport string) (*scanned, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading definitions folder: %w", err)
	}
	ctxt := buildContext()
	fset := token.NewFileSet()
	s := &scanned{}
	var vars []*varDecl
	imageFuncs := map[string]bool{}
	usesDSL := false
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		filename := filepath.Join(dir, name)
		src, err := os.ReadFile(filename)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", filename, err)
		}
		// MatchFile reads the header through OpenFile; serve it the bytes
		// already in memory instead of opening the file a second time.
		ctxt.OpenFile = func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(src)), nil }
		if ok, err := ctxt.MatchFile(dir, name); err != nil || !ok {
			continue // a header the go command rejects is reported by the compile
		}
		f, err := parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			var list scanner.ErrorList
			if errors.As(err, &list) {
				s.syntax = append(s.syntax, list...)
				continue
			}
			return nil, fmt.Errorf("parsing %s: %w", filename, err)
		}
		if s.pkgName == "" {
			s.pkgName = f.Name.Name
		} else if s.pkgName != f.Name.Name {
			return nil, fmt.Errorf("%s: package %s, but other files in %s are package %s", filename, f.Name.Name, dir, s.pkgName)
		}
		fi := &fileInfo{}
		for _, imp := range f.Imports {
			if p, _ := unquoteImport(imp); p == dslImport {
				usesDSL = true
				switch {
				case imp.Name == nil:
					fi.dslName = path.Base(dslImport)
				case imp.Name.Name == ".":
					fi.dslDot = true
				case imp.Name.Name != "_":
					fi.dslName = imp.Name.Name
				}
			}
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil && decl.Type.TypeParams == nil && singleResult(decl.Type, fi) {
					imageFuncs[decl.Name.Name] = true
				}
			case *ast.GenDecl:
				if decl.Tok != token.VAR {
					continue
				}
				for _, spec := range decl.Specs {
					vs := spec.(*ast.ValueSpec)
					doc := vs.Doc
					if doc == nil && !decl.Lparen.IsValid() {
						doc = decl.Doc
					}
					for i, id := range vs.Names {
						if id.Name == "_" {
							continue
						}
						v := &varDecl{name: id.Name, file: fi, typ: vs.Type, doc: doc, pos: id.Pos()}
						if len(vs.Values) == len(vs.Names) {
							v.value = vs.Values[i]
						}
						vars = append(vars, v)
					}
				}
			}
		}
	}
	if len(s.syntax) > 0 || !usesDSL {
		return s, nil
	}

	r := &rule{images: map[string]bool{}, funcs: imageFuncs, dsl: loadDSLTable(ws, dslImport)}
	// Images may be declared in any order and in any file, so iterate to a
	// fixed point: each pass can only add images, and there are finitely many.
	for changed := true; changed; {
		changed = false
		for _, v := range vars {
			if !r.images[v.name] && r.isImageVar(v) {
				r.images[v.name] = true
				changed = true
			}
		}
	}
	for _, v := range vars {
		if r.images[v.name] && ast.IsExported(v.name) {
			s.defs = append(s.defs, definition{
				Target: Target{Var: v.name, Doc: strings.Join(strings.Fields(v.doc.Text()), " ")},
				Pos:    fset.Position(v.pos),
			})
		}
	}
	return s, nil
}

func unquoteImport(imp *ast.ImportSpec) (string, error) {
	p := imp.Path.Value
	if len(p) >= 2 {
		return p[1 : len(p)-1], nil // import paths cannot contain escapes worth decoding
	}
	return "", fmt.Errorf("bad import %s", p)
}

// singleResult reports whether a function type returns exactly *dsl.Image.
func singleResult(ft *ast.FuncType, fi *fileInfo) bool {
	if ft.Results == nil || len(ft.Results.List) != 1 || len(ft.Results.List[0].Names) > 1 {
		return false
	}
	return isImageType(ft.Results.List[0].Type, fi)
}

// isImageType reports whether a type expression spells *dsl.Image.
func isImageType(e ast.Expr, fi *fileInfo) bool {
	star, ok := unparen(e).(*ast.StarExpr)
	return ok && isImageName(star.X, fi)
}

// isImageName reports whether e names the dsl.Image type itself.
func isImageName(e ast.Expr, fi *fileInfo) bool {
	switch e := unparen(e).(type) {
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && fi.dslName != "" && x.Name == fi.dslName && e.Sel.Name == "Image"
	case *ast.Ident:
		return fi.dslDot && e.Name == "Image"
	}
	return false
}

func unparen(e ast.Expr) ast.Expr {
	for {
		p, ok := e.(*ast.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}

// rule decides which variables are images; see the package documentation.
type rule struct {
	images map[string]bool // package-level vars known to be images
	funcs  map[string]bool // package-level funcs declared to return *dsl.Image
	dsl    *dslTable       // nil when the dsl source was not found
}

func (r *rule) isImageVar(v *varDecl) bool {
	if v.typ != nil {
		return isImageType(v.typ, v.file)
	}
	return v.value != nil && r.isImageExpr(v.value, v.file)
}

func (r *rule) isImageExpr(e ast.Expr, fi *fileInfo) bool {
	switch e := unparen(e).(type) {
	case *ast.Ident:
		return r.images[e.Name]
	case *ast.UnaryExpr:
		lit, ok := e.X.(*ast.CompositeLit)
		return e.Op == token.AND && ok && isImageName(lit.Type, fi)
	case *ast.CallExpr:
		fun := unparen(e.Fun)
		// Skip explicit instantiation: f[T](...) is still a call of f.
		switch ix := fun.(type) {
		case *ast.IndexExpr:
			fun = ix.X
		case *ast.IndexListExpr:
			fun = ix.X
		}
		switch fun := fun.(type) {
		case *ast.Ident:
			// A dot-imported dsl function needs the table: without it an
			// unqualified call cannot be told from any other.
			return r.funcs[fun.Name] || (fi.dslDot && r.dsl != nil && r.dsl.funcs[fun.Name])
		case *ast.SelectorExpr:
			if x, ok := fun.X.(*ast.Ident); ok && fi.dslName != "" && x.Name == fi.dslName {
				return r.dsl.returnsImage(false, fun.Sel.Name)
			}
			return r.isImageExpr(fun.X, fi) && r.dsl.returnsImage(true, fun.Sel.Name)
		}
	}
	return false
}

// formatSyntax prints parse errors as the compiler does, one file:line:col
// per line, with paths relative to the working directory when shorter.
func formatSyntax(list scanner.ErrorList) string {
	list.Sort()
	cwd, _ := os.Getwd()
	var b strings.Builder
	for i, e := range list {
		if i == 10 {
			b.WriteString("too many errors\n")
			break
		}
		fmt.Fprintf(&b, "%s:%d:%d: %s\n", shortPath(e.Pos.Filename, cwd), e.Pos.Line, e.Pos.Column, e.Msg)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// shortPath mirrors the go command's choice: a path relative to the working
// directory when that is shorter and does not climb out of it.
func shortPath(p, cwd string) string {
	if cwd == "" {
		return p
	}
	rel, err := filepath.Rel(cwd, p)
	if err != nil || len(rel) >= len(p) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	if !strings.Contains(rel, string(filepath.Separator)) {
		rel = "." + string(filepath.Separator) + rel
	}
	return rel
}
