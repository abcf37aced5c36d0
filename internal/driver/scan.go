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
// package that the generated main hands to strata.Main.
type Target struct {
	Var string // Go identifier, e.g. "Hello"
	Doc string // doc comment with whitespace collapsed to single spaces
}

// ErrNoDefinitions is wrapped by the error of [Scan] and [Prepare] when a
// folder holds no image definitions.
var ErrNoDefinitions = errors.New("no exported *dsl.Image variables")

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
		return fmt.Errorf("%s is package main, which Go programs cannot import: put the image definitions in a package of their own", dir)
	}
	if len(s.defs) == 0 {
		if len(s.warnings) > 0 {
			// The variables the scan could not tell are likely the targets.
			cwd, _ := os.Getwd()
			return fmt.Errorf("%w in %s:\n%s", ErrNoDefinitions, dir, strings.Join(relativeWarnings(s.warnings, cwd), "\n"))
		}
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
	typ        *ast.FuncType
	typeParams *ast.FieldList
	file       *fileInfo
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
				d.funcs[decl.Name.Name] = &funcDecl{typ: decl.Type, typeParams: decl.Type.TypeParams, file: fi}
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

// verdict is what the rule knows about the type of an expression.
type verdict int

const (
	notImage verdict = iota // certainly not a *dsl.Image
	isImage                 // a *dsl.Image, or what the syntactic rule takes for one
	unsure                  // only the type checker could tell
	pending                 // being decided: a cycle, which Go rejects
)

// resolver finds and parses, once each, the packages the definitions
// call into, so the rule can read the result types they declare.
type resolver struct {
	ws        *workspace // nil outside a module: nothing but the syntax is known
	dslImport string
	fset      *token.FileSet
	dsl       *dslTable
	dslLoaded bool
	pkgs      map[string]*rule // by import path; nil when the source is not found
}

func (res *resolver) newRule(d *pkgDecls) *rule {
	return &rule{decls: d, res: res, vars: map[string]verdict{}}
}

// dslTable returns the dsl package's table, loading it on first use.
func (res *resolver) dslTable() *dslTable {
	if !res.dslLoaded {
		res.dsl, res.dslLoaded = loadDSLTable(res.ws, res.dslImport), true
	}
	return res.dsl
}

// pkg returns the rule of the package imported as importPath, or nil when
// its source is not on disk.
func (res *resolver) pkg(importPath string) *rule {
	if r, ok := res.pkgs[importPath]; ok {
		return r
	}
	res.pkgs[importPath] = nil // an import cycle (which Go rejects) ends here
	var r *rule
	if dir := sourceDir(res.ws, importPath); dir != "" {
		if d, err := parseDecls(res.fset, dir, res.dslImport, false); err == nil && d.name != "" {
			r = res.newRule(d)
		}
	}
	res.pkgs[importPath] = r
	return r
}

// standard reports whether an import path that no module provides names a
// package of the standard library, none of which returns a *dsl.Image.
func (res *resolver) standard(importPath string) bool {
	if importPath == "C" {
		return true
	}
	first, _, _ := strings.Cut(importPath, "/")
	if strings.Contains(first, ".") {
		return false
	}
	if res.ws != nil {
		if _, ok := res.ws.localDir(importPath); ok {
			return false
		}
	}
	return true
}

// imported returns the path of the package a file imports as name. An
// import without a name is known by its package name: the last element of
// its path without a version or a "go-" prefix, or the name its source
// declares.
func (r *rule) imported(fi *fileInfo, name string) (string, bool) {
	if p, ok := fi.imports[name]; ok {
		return p, true
	}
	for _, p := range fi.unnamed {
		if guessName(p) == name {
			return p, true
		}
	}
	for _, p := range fi.unnamed {
		if r.res.standard(p) {
			continue
		}
		if other := r.res.pkg(p); other != nil && other.decls.name == name {
			return p, true
		}
	}
	return "", false
}

// guessName is the package name an import path usually has:
// "example.com/blocks" and "example.com/go-blocks/v2" are blocks,
// "gopkg.in/yaml.v3" is yaml.
func guessName(importPath string) string {
	elems := strings.Split(importPath, "/")
	name := elems[len(elems)-1]
	if len(elems) > 1 && len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		name = elems[len(elems)-2]
	}
	if i := strings.Index(name, ".v"); i > 0 {
		name = name[:i]
	}
	name = strings.TrimPrefix(name, "go-")
	name = strings.TrimSuffix(name, "-go")
	return name
}

// predeclared are Go's predeclared identifiers, which are not images and
// lead to none.
var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "comparable": true, "complex64": true, "complex128": true,
	"error": true, "float32": true, "float64": true, "int": true, "int8": true, "int16": true,
	"int32": true, "int64": true, "rune": true, "string": true, "uint": true, "uint8": true,
	"uint16": true, "uint32": true, "uint64": true, "uintptr": true, "true": true, "false": true,
	"iota": true, "nil": true, "append": true, "cap": true, "clear": true, "close": true,
	"complex": true, "copy": true, "delete": true, "imag": true, "len": true, "make": true,
	"max": true, "min": true, "new": true, "panic": true, "print": true, "println": true,
	"real": true, "recover": true,
}

// rule decides which variables of one package are images; see the package
// documentation.
type rule struct {
	decls *pkgDecls
	res   *resolver
	vars  map[string]verdict // decided so far
}

// varVerdict decides the package-level variable name.
func (r *rule) varVerdict(name string) verdict {
	if v, ok := r.vars[name]; ok {
		if v == pending {
			return notImage
		}
		return v
	}
	d := r.decls.byName[name]
	if d == nil {
		return unsure
	}
	r.vars[name] = pending
	v := notImage
	switch {
	case d.typ != nil:
		v = r.typeVerdict(d.typ, d.file, nil, 0)
	case d.value != nil && d.index < 0:
		v = r.exprVerdict(d.value, d.file)
	case d.value != nil:
		v = r.resultVerdict(d.value, d.file, d.index)
	}
	r.vars[name] = v
	return v
}

// resultVerdict decides the index-th value of an expression that
// initialises several names: a call or a comma-ok form.
func (r *rule) resultVerdict(e ast.Expr, fi *fileInfo, index int) verdict {
	switch e := unparen(e).(type) {
	case *ast.CallExpr:
		return r.callVerdict(e, fi, index)
	case *ast.TypeAssertExpr:
		if index == 0 {
			return r.typeVerdict(e.Type, fi, nil, 0)
		}
	case *ast.IndexExpr:
		if index == 0 {
			return r.exprVerdict(e, fi)
		}
	case *ast.UnaryExpr:
		if index == 0 && e.Op == token.ARROW {
			return unsure
		}
	}
	return notImage
}

// exprVerdict decides an expression used as one value.
func (r *rule) exprVerdict(e ast.Expr, fi *fileInfo) verdict {
	switch e := unparen(e).(type) {
	case *ast.Ident:
		if r.decls.byName[e.Name] != nil {
			return r.varVerdict(e.Name)
		}
		if predeclared[e.Name] || r.decls.consts[e.Name] || r.decls.funcs[e.Name] != nil || r.decls.types[e.Name] != nil {
			return notImage
		}
		return unsure // a dot-imported name

	case *ast.UnaryExpr:
		switch e.Op {
		case token.AND:
			if lit, ok := e.X.(*ast.CompositeLit); ok && isImageName(lit.Type, fi) {
				return isImage
			}
		case token.ARROW:
			return unsure
		}
		return notImage
	case *ast.CallExpr:
		return r.callVerdict(e, fi, -1)
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && r.decls.byName[x.Name] == nil {
			if x.Name == fi.dslName {
				return notImage // dsl exports no image variables
			}
			if p, ok := r.imported(fi, x.Name); ok {
				return r.foreignVar(p, e.Sel.Name)
			}
		}
		// A field: images have no exported fields, anything else might.
		return r.ofValue(e.X, fi, func(verdict) verdict { return notImage })
	case *ast.IndexExpr:
		return r.indexVerdict(e, fi)
	case *ast.TypeAssertExpr:
		return r.typeVerdict(e.Type, fi, nil, 0)
	case *ast.StarExpr:
		return r.ofValue(e.X, fi, func(verdict) verdict { return unsure })
	}
	// Literals, function literals, operators, slicing: never an image.
	return notImage
}

// ofValue decides what is reached from the value x (a field, a method's
// result, an element): image reports it when x is an image; when x is
// certainly not one, the answer is known only if x is a plain value
// (built from literals, the standard library or dsl) whose fields and
// methods cannot lead to an image.
func (r *rule) ofValue(x ast.Expr, fi *fileInfo, image func(verdict) verdict) verdict {
	switch r.exprVerdict(x, fi) {
	case isImage:
		return image(isImage)
	case notImage:
		if r.plain(x, fi, 0) {
			return notImage
		}
	}
	return unsure
}

// plain reports whether an expression is rooted in a literal, the
// standard library or dsl (other than an image), so that nothing reached
// from it is an image.
func (r *rule) plain(e ast.Expr, fi *fileInfo, depth int) bool {
	if depth > 20 {
		return false
	}
	for {
		switch x := unparen(e).(type) {
		case *ast.CallExpr:
			e = x.Fun
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.SliceExpr:
			e = x.X
		case *ast.TypeAssertExpr:
			e = x.X
		case *ast.BasicLit, *ast.CompositeLit, *ast.FuncLit:
			return true
		case *ast.Ident:
			if v := r.decls.byName[x.Name]; v != nil {
				if v.typ != nil {
					return r.plain(v.typ, v.file, depth+1)
				}
				return v.value != nil && r.plain(v.value, v.file, depth+1)
			}
			if r.decls.funcs[x.Name] != nil || r.decls.types[x.Name] != nil {
				return false // the package's own types may have such methods
			}
			if x.Name == fi.dslName {
				return true
			}
			if p, ok := r.imported(fi, x.Name); ok {
				return r.res.standard(p)
			}
			// A constant, or a name the scan cannot place (a dot import).
			return predeclared[x.Name] || r.decls.consts[x.Name]
		default:
			return false
		}
	}
}

// indexVerdict decides an element of a slice, array or map variable of the
// package whose element type is written out.
func (r *rule) indexVerdict(e *ast.IndexExpr, fi *fileInfo) verdict {
	if x, ok := unparen(e.X).(*ast.Ident); ok {
		if v := r.decls.byName[x.Name]; v != nil {
			t := v.typ
			if lit, ok := v.value.(*ast.CompositeLit); ok && t == nil {
				t = lit.Type
			}
			switch t := t.(type) {
			case *ast.ArrayType:
				return r.typeVerdict(t.Elt, v.file, nil, 0)
			case *ast.MapType:
				return r.typeVerdict(t.Value, v.file, nil, 0)
			}
		}
	}
	return r.ofValue(e.X, fi, func(verdict) verdict { return notImage })
}

// callVerdict decides a call's result: the only one when index < 0, the
// index-th otherwise.
func (r *rule) callVerdict(call *ast.CallExpr, fi *fileInfo, index int) verdict {
	fun := unparen(call.Fun)
	// Skip explicit instantiation: f[T](...) is still a call of f.
	switch ix := fun.(type) {
	case *ast.IndexExpr:
		fun = ix.X
	case *ast.IndexListExpr:
		fun = ix.X
	}
	switch fun := fun.(type) {
	case *ast.Ident:
		if fd := r.decls.funcs[fun.Name]; fd != nil {
			return r.funcVerdict(fd.typ, fd.file, fd.typeParams, index)
		}
		if r.decls.types[fun.Name] != nil {
			return r.conversion(fun, fi, index)
		}
		if v := r.decls.byName[fun.Name]; v != nil {
			if ft, ok := v.typ.(*ast.FuncType); ok {
				return r.funcVerdict(ft, v.file, nil, index)
			}
			return unsure
		}
		if fi.dslDot {
			// A dot-imported dsl function needs the table: without it an
			// unqualified call cannot be told from any other.
			if t := r.res.dslTable(); t != nil {
				if returns, ok := t.funcs[fun.Name]; ok {
					return verdictOf(returns && index < 0)
				}
			}
		}
		if fun.Name == "new" && len(call.Args) == 1 && index < 0 {
			return verdictOf(isImageName(call.Args[0], fi))
		}
		if predeclared[fun.Name] {
			return notImage // the other builtins
		}
		return unsure // a dot-imported function
	case *ast.SelectorExpr:
		if x, ok := fun.X.(*ast.Ident); ok && r.decls.byName[x.Name] == nil {
			if fi.dslName != "" && x.Name == fi.dslName {
				return verdictOf(index < 0 && r.res.dslTable().returnsImage(false, fun.Sel.Name))
			}
			if p, ok := r.imported(fi, x.Name); ok {
				return r.foreignCall(p, fun.Sel.Name, index)
			}
		}
		return r.ofValue(fun.X, fi, func(verdict) verdict {
			return verdictOf(index < 0 && r.res.dslTable().returnsImage(true, fun.Sel.Name))
		})
	case *ast.FuncLit:
		return r.funcVerdict(fun.Type, fi, nil, index)
	case *ast.StarExpr, *ast.ArrayType, *ast.MapType, *ast.ChanType, *ast.FuncType, *ast.InterfaceType:
		return r.conversion(fun, fi, index)
	}
	return unsure
}

func (r *rule) conversion(typ ast.Expr, fi *fileInfo, index int) verdict {
	if index >= 0 {
		return notImage
	}
	return r.typeVerdict(typ, fi, nil, 0)
}

// foreignCall decides a call of pkg.name from the function's declaration in
// the package's source.
func (r *rule) foreignCall(importPath, name string, index int) verdict {
	if r.res.standard(importPath) {
		return notImage
	}
	p := r.res.pkg(importPath)
	if p == nil || !ast.IsExported(name) {
		return unsure
	}
	if fd := p.decls.funcs[name]; fd != nil {
		return p.funcVerdict(fd.typ, fd.file, fd.typeParams, index)
	}
	if p.decls.types[name] != nil {
		return p.conversion(&ast.Ident{Name: name}, &fileInfo{}, index)
	}
	if v := p.decls.byName[name]; v != nil {
		if ft, ok := v.typ.(*ast.FuncType); ok {
			return p.funcVerdict(ft, v.file, nil, index)
		}
	}
	return unsure
}

// foreignVar decides the variable pkg.name.
func (r *rule) foreignVar(importPath, name string) verdict {
	if r.res.standard(importPath) {
		return notImage
	}
	p := r.res.pkg(importPath)
	if p == nil {
		return unsure
	}
	if p.decls.byName[name] != nil {
		return p.varVerdict(name)
	}
	if p.decls.funcs[name] != nil || p.decls.types[name] != nil || p.decls.consts[name] {
		return notImage // a function value, a type or a constant
	}
	return unsure // declared in a file the scan skipped
}

// funcVerdict decides the result of a call of a function of type ft.
func (r *rule) funcVerdict(ft *ast.FuncType, fi *fileInfo, typeParams *ast.FieldList, index int) verdict {
	var results []ast.Expr
	if ft.Results != nil {
		for _, f := range ft.Results.List {
			for range max(1, len(f.Names)) {
				results = append(results, f.Type)
			}
		}
	}
	switch {
	case index < 0 && len(results) == 1:
		return r.typeVerdict(results[0], fi, typeParams, 0)
	case index >= 0 && index < len(results) && len(results) > 1:
		return r.typeVerdict(results[index], fi, typeParams, 0)
	}
	return notImage // the compiler rejects the count
}

// typeVerdict decides whether a type expression of this package denotes
// *dsl.Image, following the names of types declared for it here or in
// other packages (type App = *dsl.Image).
func (r *rule) typeVerdict(t ast.Expr, fi *fileInfo, typeParams *ast.FieldList, depth int) verdict {
	if depth > 10 {
		return notImage // type T *T and the like
	}
	if isImageType(t, fi) {
		return isImage
	}
	switch t := unparen(t).(type) {
	case *ast.Ident:
		if typeParams != nil {
			for _, f := range typeParams.List {
				for _, n := range f.Names {
					if n.Name == t.Name {
						return unsure // a type parameter: depends on the call
					}
				}
			}
		}
		if td := r.decls.types[t.Name]; td != nil {
			return r.typeVerdict(td.typ, td.file, nil, depth+1)
		}
	case *ast.SelectorExpr:
		x, ok := t.X.(*ast.Ident)
		if !ok || x.Name == fi.dslName {
			return notImage // dsl.Option, dsl.Base and the like
		}
		p, ok := r.imported(fi, x.Name)
		if !ok {
			return unsure
		}
		if r.res.standard(p) {
			return notImage
		}
		other := r.res.pkg(p)
		if other == nil {
			return unsure
		}
		if td := other.decls.types[t.Sel.Name]; td != nil {
			return other.typeVerdict(td.typ, td.file, nil, depth+1)
		}
		return unsure
	}
	return notImage
}

func verdictOf(image bool) verdict {
	if image {
		return isImage
	}
	return notImage
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
