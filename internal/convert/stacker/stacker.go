// Package stacker converts a stacker.yaml file into a Go package of strata
// image definitions that builds the same images.
//
// The conversion is pure: yaml bytes and Options in, gofmt'ed Go source
// and the list of what has no strata equivalent out. Reading files,
// finding prerequisites and writing the result is the strata convert
// command's job.
package stacker

import (
	"bytes"
	"fmt"
	"go/format"
	"go/token"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/strata-build/strata/internal/convert/goname"
)

// Options says how to convert one stacker.yaml.
type Options struct {
	// File is the yaml file's name as the user gave it, for messages and
	// the generated comments.
	File string
	// Package is the name of the generated Go package.
	Package string
	// LocalPath turns a local path of the yaml (as written: absolute, or
	// relative to the yaml's folder) into the path the generated Go file
	// uses (absolute, or relative to the Go file's folder, which is how
	// dsl.File, dsl.Dir, dsl.Layout, dsl.Tarball and Bind resolve them).
	// Nil keeps paths as written.
	LocalPath func(p string) string
	// IsDir reports whether a local import (as written) is a folder, to
	// choose dsl.Dir over dsl.File. Nil: a path ending in "/" is a folder.
	IsDir func(p string) bool
	// Prerequisites are the converted packages of the yaml's
	// config.prerequisites, by the path written there.
	Prerequisites []Prerequisite
}

// Prerequisite is a stacker.yaml that another one names in
// config.prerequisites, as converted into its own Go package.
type Prerequisite struct {
	// Path is the path as written in config.prerequisites.
	Path string
	// ImportPath and Package are the Go package it was converted into.
	ImportPath, Package string
	// Layers are its layer names.
	Layers []string
}

// Result is a converted stacker.yaml.
type Result struct {
	// Source is the Go source of the package's one file, gofmt'ed.
	Source []byte
	// Unsupported lists what has no strata equivalent, one line each
	// ("layer app: arch: ..."); each is also a comment in Source.
	Unsupported []string
}

// File is what Parse finds in a stacker.yaml without converting it: its
// layer names and config.prerequisites.
type File struct {
	Layers        []string
	Prerequisites []string
}

// Parse reads the layer names and prerequisites of a stacker.yaml, so that
// a caller can convert prerequisites first.
func Parse(data []byte, file string) (*File, error) {
	doc, err := parse(data, file)
	if err != nil {
		return nil, err
	}
	return &File{Layers: doc.names(), Prerequisites: doc.prereqs}, nil
}

type document struct {
	file        string
	layers      []*layerNode
	prereqs     []string
	otherConfig []string // config keys other than prerequisites
}

type layerNode struct {
	name    string
	comment string // the yaml comment above the layer's name
	node    *yaml.Node
}

func (d *document) names() []string {
	var n []string
	for _, l := range d.layers {
		n = append(n, l.name)
	}
	return n
}

func parse(data []byte, file string) (*document, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	d := &document{file: file}
	if root.Kind == 0 {
		return nil, fmt.Errorf("%s: the file defines no layer", file)
	}
	top := expand(root.Content[0], 0)
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of layer names to layers", file, top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Value == "config" {
			if err := d.config(v); err != nil {
				return nil, err
			}
			continue
		}
		if v.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: layer %s: want a mapping of directives", file, k.Line, k.Value)
		}
		d.layers = append(d.layers, &layerNode{name: k.Value, comment: k.HeadComment, node: v})
	}
	if len(d.layers) == 0 {
		return nil, fmt.Errorf("%s: the file defines no layer", file)
	}
	return d, nil
}

// expand replaces aliases (*name) by what they stand for and merges the
// mappings of merge keys (<<: *common) into theirs, the mapping's own keys
// winning, as stacker's yaml parser does.
func expand(n *yaml.Node, depth int) *yaml.Node {
	if n == nil || depth > 100 {
		return n
	}
	if n.Kind == yaml.AliasNode {
		return expand(n.Alias, depth+1)
	}
	if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode && n.Kind != yaml.DocumentNode {
		return n
	}
	c := *n
	c.Content = nil
	if n.Kind != yaml.MappingNode {
		for _, it := range n.Content {
			c.Content = append(c.Content, expand(it, depth+1))
		}
		return &c
	}
	var merged []*yaml.Node
	own := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "<<" {
			own[n.Content[i].Value] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], expand(n.Content[i+1], depth+1)
		if k.Value != "<<" || k.Tag != "!!merge" {
			c.Content = append(c.Content, k, v)
			continue
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			if src.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(src.Content); j += 2 {
				if key := src.Content[j].Value; !own[key] {
					own[key] = true
					merged = append(merged, src.Content[j], src.Content[j+1])
				}
			}
		}
	}
	c.Content = append(c.Content, merged...)
	return &c
}

func (d *document) config(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: config: want a mapping", d.file, v.Line)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if k.Value != "prerequisites" {
			d.otherConfig = append(d.otherConfig, k.Value)
			continue
		}
		var list []string
		if err := val.Decode(&list); err != nil {
			return fmt.Errorf("%s:%d: config: prerequisites: want a list of paths: %w", d.file, val.Line, err)
		}
		d.prereqs = list
	}
	return nil
}

// StackerDir is where stacker shows imports without a dest to the run
// script (/stacker/imports) and the deprecated import directive's (/stacker).
const StackerDir = "/stacker"

// converter holds the state of one conversion.
type converter struct {
	opts        Options
	doc         *document
	idents      map[string]string // layer name -> Go expression
	params      []param
	paramIdx    map[string]int
	unsupported []string
	imports     map[string]string // Go import path -> package name
	used        map[string]bool   // package names that a layer refers to
	fileNotes   []string          // comments of the package clause
}

type param struct {
	key, ident, def string
	hasDef          bool
}

// Convert converts a stacker.yaml.
func Convert(data []byte, opts Options) (*Result, error) {
	if opts.File == "" {
		opts.File = "stacker.yaml"
	}
	if opts.Package == "" {
		opts.Package = "images"
	}
	if !token.IsIdentifier(opts.Package) {
		return nil, fmt.Errorf("%s: package name %q is not a Go identifier", opts.File, opts.Package)
	}
	doc, err := parse(data, opts.File)
	if err != nil {
		return nil, err
	}
	c := &converter{opts: opts, doc: doc, idents: map[string]string{}, paramIdx: map[string]int{}, imports: map[string]string{}, used: map[string]bool{}}
	return c.convert()
}

func (c *converter) convert() (*Result, error) {
	// Names first: a layer may use one defined later in the file.
	seen := map[string]string{}
	for _, l := range c.doc.layers {
		id := goname.Exported(l.name)
		if other, ok := seen[id]; ok {
			return nil, fmt.Errorf("%s: layers %s and %s both become the Go name %s", c.opts.File, other, l.name, id)
		}
		seen[id] = l.name
		c.idents[l.name] = id
	}
	prereqs := map[string]Prerequisite{}
	for _, p := range c.opts.Prerequisites {
		prereqs[p.Path] = p
	}
	for _, p := range c.doc.prereqs {
		pr, ok := prereqs[p]
		if !ok {
			return nil, fmt.Errorf("%s: config: prerequisites: %s was not converted with it (convert them together)", c.opts.File, p)
		}
		c.imports[pr.ImportPath] = pr.Package
		for _, name := range pr.Layers {
			if _, ok := c.idents[name]; !ok {
				c.idents[name] = pr.Package + "." + goname.Exported(name)
			}
		}
	}
	c.configKeys()

	var body bytes.Buffer
	for _, l := range c.order() {
		if err := c.layer(&body, l); err != nil {
			return nil, err
		}
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "// Code converted from %s by strata convert; edit it as your own.\n\n", path.Base(c.opts.File))
	fmt.Fprintf(&out, "// Package %s holds the images of %s,\n// converted from stacker's format into strata definitions.\n", c.opts.Package, c.opts.File)
	if len(c.doc.prereqs) > 0 {
		fmt.Fprintf(&out, "//\n// It builds on the images of its prerequisites, each converted into its\n// own package: %s.\n", strings.Join(c.doc.prereqs, ", "))
	}
	for _, n := range c.fileNotes {
		fmt.Fprintf(&out, "//\n// %s\n", n)
	}
	fmt.Fprintf(&out, "package %s\n\n", c.opts.Package)
	paths := make([]string, 0, len(c.imports))
	for p := range c.imports {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if len(paths) == 0 {
		fmt.Fprint(&out, "import \"github.com/strata-build/strata/dsl\"\n\n")
	} else {
		fmt.Fprint(&out, "import (\n\"github.com/strata-build/strata/dsl\"\n\n")
	}
	for _, p := range paths {
		switch name := c.imports[p]; {
		case !c.used[name]:
			// Go refuses an unused import; the blank one keeps the
			// prerequisite a dependency of this package, as in stacker.
			fmt.Fprintf(&out, "_ %q // prerequisite: no layer here builds on its images\n", p)
		case path.Base(p) == name:
			fmt.Fprintf(&out, "%q\n", p)
		default:
			fmt.Fprintf(&out, "%s %q\n", name, p)
		}
	}
	if len(paths) > 0 {
		fmt.Fprint(&out, ")\n\n")
	}
	if len(c.params) > 0 {
		fmt.Fprint(&out, "// The build parameters of stacker's ${{KEY}} and ${{KEY:default}}\n// substitutions: strata build --set KEY=VALUE sets them.\nvar (\n")
		for _, p := range c.params {
			if p.hasDef {
				fmt.Fprintf(&out, "%s = dsl.Param(%q, %q)\n", p.ident, p.key, p.def)
			} else {
				fmt.Fprintf(&out, "%s = dsl.RequiredParam(%q) // no default: the build must set it\n", p.ident, p.key)
			}
		}
		fmt.Fprint(&out, ")\n\n")
	}
	out.Write(body.Bytes())
	src, err := format.Source(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: the generated Go code does not parse (a bug of strata convert): %w\n%s", c.opts.File, err, out.Bytes())
	}
	return &Result{Source: src, Unsupported: c.unsupported}, nil
}

// ref is the Go expression of the layer name, defined in this file or a
// prerequisite (whose package it marks used).
func (c *converter) ref(name string) (string, bool) {
	id, ok := c.idents[name]
	if pkg, _, found := strings.Cut(id, "."); ok && found {
		c.used[pkg] = true
	}
	return id, ok
}

// configKeys notes the config keys other than prerequisites.
func (c *converter) configKeys() {
	for _, k := range c.doc.otherConfig {
		c.fileNotes = append(c.fileNotes, c.note("", "config: "+k, "strata convert only knows config.prerequisites"))
	}
}

// order puts every layer after the layers of this file it builds on
// (from built, stacker:// imports), otherwise keeping the yaml's order.
func (c *converter) order() []*layerNode {
	byName := map[string]*layerNode{}
	for _, l := range c.doc.layers {
		byName[l.name] = l
	}
	var out []*layerNode
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(l *layerNode)
	visit = func(l *layerNode) {
		if state[l.name] != 0 {
			return // a cycle is left to the Go compiler to report
		}
		state[l.name] = 1
		for _, dep := range dependencies(l.node) {
			if d, ok := byName[dep]; ok {
				visit(d)
			}
		}
		state[l.name] = 2
		out = append(out, l)
	}
	for _, l := range c.doc.layers {
		visit(l)
	}
	return out
}

// dependencies are the layer names a layer refers to.
func dependencies(n *yaml.Node) []string {
	var deps []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "from":
			if t := field(v, "type"); t != nil && t.Value == "built" {
				if tag := field(v, "tag"); tag != nil {
					deps = append(deps, tag.Value)
				}
			}
			if u := field(v, "url"); u != nil {
				if name, _, ok := stackerURL(u.Value); ok {
					deps = append(deps, name)
				}
			}
		case "imports", "import":
			items := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
			for _, it := range items {
				p := it
				if it.Kind == yaml.MappingNode {
					p = field(it, "path")
				}
				if p != nil {
					if name, _, ok := stackerURL(p.Value); ok {
						deps = append(deps, name)
					}
				}
			}
		}
	}
	return deps
}

func field(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// stackerURL splits stacker://NAME/path.
func stackerURL(s string) (name, p string, ok bool) {
	rest, ok := strings.CutPrefix(s, "stacker://")
	if !ok {
		return "", "", false
	}
	name, p, _ = strings.Cut(rest, "/")
	return name, "/" + p, true
}

var placeholder = regexp.MustCompile(`\$\{\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}\}`)

// str is the Go expression of a yaml string: a literal, with each
// substitution placeholder spliced in as its parameter variable.
func (c *converter) str(s string) string {
	locs := placeholder.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 0 {
		return goname.Quote(s)
	}
	var parts []string
	last := 0
	for _, m := range locs {
		if m[0] > last {
			parts = append(parts, goname.Quote(s[last:m[0]]))
		}
		key := s[m[2]:m[3]]
		def, hasDef := "", m[4] >= 0
		if hasDef {
			def = s[m[4]+1 : m[5]]
		}
		parts = append(parts, c.param(key, def, hasDef))
		last = m[1]
	}
	if last < len(s) {
		parts = append(parts, goname.Quote(s[last:]))
	}
	return strings.Join(parts, " + ")
}

// param returns the variable of the parameter key, declaring it the first
// time. A key used with different defaults keeps the first one, and a key
// used both with and without a default keeps the default: strata has one
// value per parameter.
func (c *converter) param(key, def string, hasDef bool) string {
	if i, ok := c.paramIdx[key]; ok {
		p := &c.params[i]
		if hasDef && (!p.hasDef || p.def != def) {
			if p.hasDef {
				c.note("", "${{"+key+":"+def+"}}", "strata has one default per parameter; "+p.ident+" keeps "+strconv.Quote(p.def))
			} else {
				p.def, p.hasDef = def, true
			}
		}
		return p.ident
	}
	id := lowerCamel(key)
	for c.taken(id) {
		id += "Param"
	}
	c.paramIdx[key] = len(c.params)
	c.params = append(c.params, param{key: key, ident: id, def: def, hasDef: hasDef})
	return id
}

func (c *converter) taken(id string) bool {
	if token.IsKeyword(id) || id == "dsl" || id == "strings" || id == c.opts.Package {
		return true
	}
	for _, p := range c.params {
		if p.ident == id {
			return true
		}
	}
	for _, pkg := range c.imports {
		if pkg == id {
			return true
		}
	}
	return false
}

func lowerCamel(key string) string {
	words := strings.FieldsFunc(strings.ToLower(key), func(r rune) bool { return r == '_' })
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
	}
	s := b.String()
	if s == "" || !unicode.IsLetter([]rune(s)[0]) {
		s = "p" + s
	}
	return s
}

func (c *converter) note(layer, what, why string) string {
	line := what + " has no strata equivalent: " + why
	if layer != "" {
		line = "layer " + layer + ": " + line
	}
	c.unsupported = append(c.unsupported, line)
	return "stacker: " + what + " has no strata equivalent: " + why
}
