package driver

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/printer"
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
// package that the generated main hands to dsl.DriverMain.
type Target struct {
	Var string // Go identifier, e.g. "Hello"
	Doc string // doc comment with whitespace collapsed to single spaces
}

// ErrNoDefinitions is wrapped by the error of [Scan] and [Prepare] when a
// folder holds no image definitions.
var ErrNoDefinitions = errors.New("no exported *dsl.Image variables")

// NoDefinitionsError is the error of [Scan] and [Prepare] for a folder
// without targets. Warnings name the variables the scan could not tell
// are images, which are likely the targets: a caller that skips the
// folder (strata build ./...) must still show them.
type NoDefinitionsError struct {
	Dir      string
	Warnings []string
}

func (e *NoDefinitionsError) Error() string {
	if len(e.Warnings) == 0 {
		return fmt.Sprintf("%v in %s", ErrNoDefinitions, e.Dir)
	}
	return fmt.Sprintf("%v in %s:\n%s", ErrNoDefinitions, e.Dir, strings.Join(e.Warnings, "\n"))
}

// Is makes errors.Is(err, ErrNoDefinitions) hold.
func (e *NoDefinitionsError) Is(target error) bool { return target == ErrNoDefinitions }

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
	// warnings name, as "file.go:12: message" with an absolute file, the
	// exported variables that may be images but that the scan could not
	// establish as such: they are not targets, and must not vanish silently.
	warnings []string
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
		cwd, _ := os.Getwd()
		return &NoDefinitionsError{Dir: dir, Warnings: relativeWarnings(s.warnings, cwd)}
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

// pkgDecls are the package-level declarations of one package, as written.
type pkgDecls struct {
	name   string
	vars   []*varDecl // in declaration order (files in name order)
	byName map[string]*varDecl
	funcs  map[string]*funcDecl
	types  map[string]*typeDecl
	consts map[string]bool
	// syntax holds parse errors (only kept for the definitions package).
	syntax scanner.ErrorList
}

// varDecl is a package-level variable as written.
type varDecl struct {
	name  string
	file  *fileInfo
	typ   ast.Expr // nil when inferred
	value ast.Expr // the initializer; nil when absent
	// index is which of value's results the variable receives when one
	// expression initialises several names (var A, B = pair()); -1 when
	// each name has its own initializer.
	index int
	doc   *ast.CommentGroup
	pos   token.Pos
}

// funcDecl is a package-level function (not a method).
type funcDecl struct {
	typ  *ast.FuncType
	file *fileInfo
}

// typeDecl is a package-level type: a definition or an alias of typ.
type typeDecl struct {
	typ  ast.Expr
	file *fileInfo
}

// fileInfo is what the rule needs to know about the file a declaration
// lives in: import names are per file.
type fileInfo struct {
	dslName string // local name of the dsl import, "" if not imported
	dslDot  bool   // dsl is dot-imported
	// imports maps the names of the file's other imports to their paths.
	imports map[string]string
	// unnamed are the paths of imports without a name, known by their
	// package name, which is usually, not always, the path's last element.
	unnamed []string
}

// parseDecls parses the package in dir. The definitions package is parsed
// strictly (strict: read errors fail, syntax errors are kept, docs are
// read); a library it uses only refines the rule, so a file that does not
// parse is skipped there.
func parseDecls(fset *token.FileSet, dir, dslImport string, strict bool) (*pkgDecls, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading definitions folder: %w", err)
	}
	ctxt := buildContext()
	d := &pkgDecls{byName: map[string]*varDecl{}, funcs: map[string]*funcDecl{}, types: map[string]*typeDecl{}, consts: map[string]bool{}}
	mode := parser.SkipObjectResolution
	if strict {
		mode |= parser.ParseComments
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		filename := filepath.Join(dir, name)
		src, err := os.ReadFile(filename)
		if err != nil {
			if !strict {
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", filename, err)
		}
		// MatchFile reads the header through OpenFile; serve it the bytes
		// already in memory instead of opening the file a second time.
		ctxt.OpenFile = func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(src)), nil }
		if ok, err := ctxt.MatchFile(dir, name); err != nil || !ok {
			continue // a header the go command rejects is reported by the compile
		}
		f, err := parser.ParseFile(fset, filename, src, mode)
		if err != nil {
			var list scanner.ErrorList
			if !strict {
				continue
			}
			if errors.As(err, &list) {
				d.syntax = append(d.syntax, list...)
				continue
			}
			return nil, fmt.Errorf("parsing %s: %w", filename, err)
		}
		if d.name == "" {
			d.name = f.Name.Name
		} else if d.name != f.Name.Name {
			if !strict {
				continue
			}
			return nil, fmt.Errorf("%s: package %s, but other files in %s are package %s", filename, f.Name.Name, dir, d.name)
		}
		d.addFile(f, dslImport)
	}
	return d, nil
}

func (d *pkgDecls) addFile(f *ast.File, dslImport string) {
	fi := &fileInfo{imports: map[string]string{}}
	for _, imp := range f.Imports {
		p, _ := unquoteImport(imp)
		if p == dslImport {
			switch {
			case imp.Name == nil:
				fi.dslName = path.Base(dslImport)
			case imp.Name.Name == ".":
				fi.dslDot = true
			case imp.Name.Name != "_":
				fi.dslName = imp.Name.Name
			}
			continue
		}
		switch {
		case imp.Name == nil:
			fi.unnamed = append(fi.unnamed, p)
		case imp.Name.Name != "_" && imp.Name.Name != ".":
			fi.imports[imp.Name.Name] = p
		}
	}
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if decl.Recv == nil {
				d.funcs[decl.Name.Name] = &funcDecl{typ: decl.Type, file: fi}
			}
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					if spec.TypeParams == nil {
						d.types[spec.Name.Name] = &typeDecl{typ: spec.Type, file: fi}
					}
				case *ast.ValueSpec:
					if decl.Tok == token.VAR {
						d.addVars(decl, spec, fi)
						continue
					}
					for _, id := range spec.Names {
						d.consts[id.Name] = true
					}
				}
			}
		}
	}
}

func (d *pkgDecls) addVars(decl *ast.GenDecl, vs *ast.ValueSpec, fi *fileInfo) {
	doc := vs.Doc
	if doc == nil && !decl.Lparen.IsValid() {
		doc = decl.Doc
	}
	for i, id := range vs.Names {
		if id.Name == "_" {
			continue
		}
		v := &varDecl{name: id.Name, file: fi, typ: vs.Type, doc: doc, pos: id.Pos(), index: -1}
		switch {
		case len(vs.Values) == len(vs.Names):
			v.value = vs.Values[i]
		case len(vs.Values) == 1:
			v.value, v.index = vs.Values[0], i
		}
		d.vars = append(d.vars, v)
		d.byName[v.name] = v
	}
}

// scanPackage parses the package in dir. dslImport is the import path of
// the dsl package; ws (may be nil) locates the source of dsl and of the
// packages the definitions call, to refine the rule.
func scanPackage(dir string, ws *workspace, dslImport string) (*scanned, error) {
	fset := token.NewFileSet()
	decls, err := parseDecls(fset, dir, dslImport, true)
	if err != nil {
		return nil, err
	}
	s := &scanned{pkgName: decls.name, syntax: decls.syntax}
	if len(s.syntax) > 0 {
		return s, nil
	}
	res := &resolver{ws: ws, dslImport: dslImport, fset: fset, pkgs: map[string]*rule{}}
	r := res.newRule(decls)
	for _, v := range decls.vars {
		if !ast.IsExported(v.name) {
			continue
		}
		switch r.varVerdict(v.name) {
		case isImage:
			s.defs = append(s.defs, definition{
				Target: Target{Var: v.name, Doc: strings.Join(strings.Fields(v.doc.Text()), " ")},
				Pos:    fset.Position(v.pos),
			})
		case unsure:
			s.warnings = append(s.warnings, unsureWarning(fset, v))
		}
	}
	return s, nil
}

// unsureWarning says why a variable is not a target and how to make it
// one. The file is absolute; relativeWarnings shortens it for the reader.
func unsureWarning(fset *token.FileSet, v *varDecl) string {
	dsl := v.file.dslName
	if dsl == "" {
		dsl = "dsl"
	}
	init := "..."
	if v.value != nil && v.index < 0 {
		init = exprSummary(fset, v.value)
	}
	pos := fset.Position(v.pos)
	return fmt.Sprintf("%s:%d: var %s is not a build target: strata cannot tell its type without compiling; declare it: var %s *%s.Image = %s",
		pos.Filename, pos.Line, v.name, v.name, dsl, init)
}

// exprSummary is an initializer as a message shows it: short ones as
// written, a long call as its function and "(...)".
func exprSummary(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	if err := printer.Fprint(&b, fset, e); err == nil && b.Len() <= 40 && !strings.Contains(b.String(), "\n") {
		return b.String()
	}
	if call, ok := unparen(e).(*ast.CallExpr); ok {
		var f strings.Builder
		if err := printer.Fprint(&f, fset, call.Fun); err == nil && f.Len() <= 60 && !strings.Contains(f.String(), "\n") {
			return f.String() + "(...)"
		}
	}
	return "..."
}

// relativeWarnings makes the absolute file names that start the scan's
// warnings relative to cwd when that is shorter, as compiler messages are.
// The warnings are stored with absolute names because a cached driver may
// be run from another folder.
func relativeWarnings(warnings []string, cwd string) []string {
	if len(warnings) == 0 {
		return nil
	}
	out := make([]string, len(warnings))
	for i, w := range warnings {
		out[i] = w
		if file, rest, ok := strings.Cut(w, ".go:"); ok && filepath.IsAbs(file) {
			out[i] = shortPath(file+".go", cwd) + ":" + rest
		}
	}
	return out
}

func unquoteImport(imp *ast.ImportSpec) (string, error) {
	p := imp.Path.Value
	if len(p) >= 2 {
		return p[1 : len(p)-1], nil // import paths cannot contain escapes worth decoding
	}
	return "", fmt.Errorf("bad import %s", p)
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
