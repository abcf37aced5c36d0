package driver

import (
	"go/ast"
	"go/token"
	"strings"
)

// The rule: which expressions are a *dsl.Image, decided from declarations
// alone. The package documentation states it for users.

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
			return r.funcVerdict(fd.typ, fd.file, index)
		}
		if r.decls.types[fun.Name] != nil {
			return r.conversion(fun, fi, index)
		}
		if v := r.decls.byName[fun.Name]; v != nil {
			if ft, ok := v.typ.(*ast.FuncType); ok {
				return r.funcVerdict(ft, v.file, index)
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
		return r.funcVerdict(fun.Type, fi, index)
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
		return p.funcVerdict(fd.typ, fd.file, index)
	}
	if p.decls.types[name] != nil {
		return p.conversion(&ast.Ident{Name: name}, &fileInfo{}, index)
	}
	if v := p.decls.byName[name]; v != nil {
		if ft, ok := v.typ.(*ast.FuncType); ok {
			return p.funcVerdict(ft, v.file, index)
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
func (r *rule) funcVerdict(ft *ast.FuncType, fi *fileInfo, index int) verdict {
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
		return r.typeVerdict(results[0], fi, ft.TypeParams, 0)
	case index >= 0 && index < len(results) && len(results) > 1:
		return r.typeVerdict(results[index], fi, ft.TypeParams, 0)
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
