package dsl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// DefinitionsFormat is the version of the serialized form in which a
// compiled definitions package hands its definitions to the strata CLI
// (WriteDefinitions, ReadDefinitions). It changes whenever a field is
// added, removed or changes meaning, so a CLI never misreads definitions
// written by another version of this package.
const DefinitionsFormat = 1

// ModulePath is the module that holds this package and the strata CLI.
const ModulePath = "github.com/strata-build/strata"

// Target is one exported definition of a definitions package.
type Target struct {
	Var   string // Go identifier
	Doc   string // its doc comment
	Image *Image
}

// Definitions are the targets of one definitions package as the strata CLI
// receives them from the package's compiled driver.
type Definitions struct {
	// Package is the import path of the definitions package.
	Package string
	// Targets are its exported images, in declaration order.
	Targets []Target
	// Writer is the version of this module that the driver was compiled
	// with, as the go command recorded it ("v1.2.3", "(devel)").
	Writer string
}

// FormatError is returned by ReadDefinitions for definitions written in a
// format this version of strata cannot read.
type FormatError struct {
	Package        string
	Got, Want      int    // formats
	Writer, Reader string // module versions
}

func (e *FormatError) Error() string {
	msg := fmt.Sprintf("the definitions in %s were compiled against strata %s (definitions format %d), but this strata is %s and reads format %d: ",
		e.Package, e.Writer, e.Got, e.Reader, e.Want)
	if !strings.HasPrefix(e.Writer, "v") {
		// A checkout (a replace) has no version to install: only the
		// module's own tool build of it matches.
		return msg + "run the strata of the definitions' module (go tool strata, built from the checkout its replace points at)"
	}
	return msg + fmt.Sprintf("run the strata of the definitions' module (go tool strata, after go get -tool %s/cmd/strata@%s) or install the matching one (go install %s/cmd/strata@%s)",
		ModulePath, e.Writer, ModulePath, e.Writer)
}

// ModuleVersion returns the version of this module linked into the running
// program, as the go command recorded it: "v1.2.3" for a released module,
// a pseudo-version, or "(devel)" for a checkout (also a replaced one).
func ModuleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	mods := append([]*debug.Module{&info.Main}, info.Deps...)
	for _, m := range mods {
		if m == nil || m.Path != ModulePath {
			continue
		}
		if m.Replace != nil {
			if m.Replace.Version != "" {
				return m.Replace.Version
			}
			return "(devel)"
		}
		if m.Version == "" {
			return "(devel)"
		}
		return m.Version
	}
	return "(devel)"
}

// WriteDefinitions writes the targets of the definitions package pkg, and
// every image they reach, in the serialized form ReadDefinitions reads. The
// form is JSON; DefinitionsFormat versions it.
func WriteDefinitions(w io.Writer, pkg string, targets []Target) error {
	enc := &encoder{index: map[*Image]int{}}
	doc := wireDoc{Format: DefinitionsFormat, Writer: ModuleVersion(), Package: pkg}
	for _, t := range targets {
		wt := wireTarget{Var: t.Var, Doc: t.Doc, Image: -1}
		if t.Image != nil {
			wt.Image = enc.image(t.Image)
		}
		doc.Targets = append(doc.Targets, wt)
	}
	doc.Images = enc.images
	for _, err := range pendingParamErrors() {
		doc.ParamErrors = append(doc.ParamErrors, err.Error())
	}
	return json.NewEncoder(w).Encode(doc)
}

// ReadDefinitions reads definitions written by WriteDefinitions, possibly
// by another process. Problems the writer found while its definitions
// initialised (a parameter that is not a number) are reported by Evaluate
// in this process as if they were found here.
func ReadDefinitions(r io.Reader) (*Definitions, error) {
	var head struct {
		Format  int    `json:"format"`
		Writer  string `json:"writer"`
		Package string `json:"package"`
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading definitions: %w", err)
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("reading definitions: %w", err)
	}
	if head.Format != DefinitionsFormat {
		return nil, &FormatError{Package: head.Package, Got: head.Format, Want: DefinitionsFormat, Writer: head.Writer, Reader: ModuleVersion()}
	}
	var doc wireDoc
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		// Most likely a writer of another version that changed the form
		// without changing its number: say who wrote and who reads.
		return nil, fmt.Errorf("reading the definitions of %s, written by strata %s and read by strata %s (format %d): %w; "+
			"if the versions differ, run the strata of the definitions' module (go tool strata)", head.Package, head.Writer, ModuleVersion(), head.Format, err)
	}
	d := &decoder{doc: &doc, images: make([]*Image, len(doc.Images))}
	for n := range doc.Images {
		if _, err := d.image(n); err != nil {
			return nil, fmt.Errorf("reading definitions of %s: %w", doc.Package, err)
		}
	}
	out := &Definitions{Package: doc.Package, Writer: doc.Writer}
	for _, t := range doc.Targets {
		tgt := Target{Var: t.Var, Doc: t.Doc}
		if t.Image >= 0 {
			img, err := d.image(t.Image)
			if err != nil {
				return nil, fmt.Errorf("reading definitions of %s: %w", doc.Package, err)
			}
			tgt.Image = img
		}
		out.Targets = append(out.Targets, tgt)
	}
	for _, msg := range doc.ParamErrors {
		recordParamError(errors.New(msg))
	}
	return out, nil
}

// The wire types mirror the definition types field by field. They are
// separate from them so that the API can change without changing the
// format, and so that unexported state (what a path was written as, for
// placeholders) travels too.
type wireDoc struct {
	Format      int          `json:"format"`
	Writer      string       `json:"writer"`
	Package     string       `json:"package"`
	Targets     []wireTarget `json:"targets"`
	Images      []wireImage  `json:"images"`
	ParamErrors []string     `json:"paramErrors,omitempty"`
}

type wireTarget struct {
	Var   string `json:"var"`
	Doc   string `json:"doc,omitempty"`
	Image int    `json:"image"` // index into Images; -1 for a nil image
}

type wireImage struct {
	Name      string       `json:"name"`
	Defined   Pos          `json:"defined"`
	LastEdit  Pos          `json:"lastEdit"`
	Base      *wireBase    `json:"base,omitempty"`
	BasePos   Pos          `json:"basePos"`
	Steps     []wireStep   `json:"steps,omitempty"`
	Env       [][2]string  `json:"env,omitempty"`
	BuildEnv  [][2]string  `json:"buildEnv,omitempty"`
	Labels    [][2]string  `json:"labels,omitempty"`
	LabelGens []wireStep   `json:"generateLabels,omitempty"`
	Annots    [][2]string  `json:"annotations,omitempty"`
	Volumes   []string     `json:"volumes,omitempty"`
	Ports     []string     `json:"exposedPorts,omitempty"`
	Entry     *[]string    `json:"entrypoint,omitempty"`
	Cmd       *[]string    `json:"cmd,omitempty"`
	WorkDir   string       `json:"workDir,omitempty"`
	User      string       `json:"user,omitempty"`
	BuildOnly bool         `json:"buildOnly,omitempty"`
	Binds     []wireBind   `json:"binds,omitempty"`
	Types     []LayerType  `json:"layerTypes,omitempty"`
	Caches    []CacheMount `json:"cacheMounts,omitempty"`
	Secrets   []Secret     `json:"secrets,omitempty"`
	Tags      []string     `json:"tags,omitempty"`
	Errs      []string     `json:"errors,omitempty"`
}

// wireBase is one of the kinds of base; Kind says which fields count.
type wireBase struct {
	Kind     string `json:"kind"` // scratch, image, layout, pull, tarball
	Image    int    `json:"image,omitempty"`
	Path     string `json:"path,omitempty"`
	Tag      string `json:"tag,omitempty"`
	Ref      string `json:"ref,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	Platform string `json:"platform,omitempty"`
	URL      string `json:"url,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Raw      string `json:"raw,omitempty"`
	Pos      Pos    `json:"pos"`
}

type wireStep struct {
	Script string      `json:"run,omitempty"`
	Import *wireImport `json:"import,omitempty"`
	Pos    Pos         `json:"pos"`
}

type wireImport struct {
	Source wireSource `json:"source"`
	Dest   string     `json:"dest"`
	Mode   *uint32    `json:"mode,omitempty"`
	UID    *int       `json:"uid,omitempty"`
	GID    *int       `json:"gid,omitempty"`
}

// wireSource is one of the kinds of import source; Kind says which fields
// count.
type wireSource struct {
	Kind   string `json:"kind"` // file, folder, url, image
	Path   string `json:"path,omitempty"`
	Raw    string `json:"raw,omitempty"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Image  int    `json:"image,omitempty"`
	// Exclude are a folder's exclusion patterns (dsl.Exclude).
	Exclude []string `json:"exclude,omitempty"`
	Pos     Pos      `json:"pos"`
}

type wireBind struct {
	Source     string   `json:"source"`
	RawSource  string   `json:"rawSource,omitempty"`
	Dest       string   `json:"dest"`
	ReadOnly   bool     `json:"readOnly,omitempty"`
	ContentKey bool     `json:"contentKey,omitempty"`
	KeyPaths   []string `json:"keyPaths,omitempty"`
	Pos        Pos      `json:"pos"`
}

// encoder numbers images by identity, so an image shared by several others
// (a common base) stays one value after decoding, as Evaluate expects.
type encoder struct {
	index  map[*Image]int
	images []wireImage
}

func (e *encoder) image(img *Image) int {
	if n, ok := e.index[img]; ok {
		return n
	}
	n := len(e.images)
	e.index[img] = n
	e.images = append(e.images, wireImage{}) // reserved before recursing
	w := wireImage{
		Name: img.name, Defined: img.defined, LastEdit: img.lastEdit, BasePos: img.basePos,
		Env: pairs(img.env), BuildEnv: pairs(img.buildEnv), Labels: pairs(img.labels),
		Entry: nonNil(img.entry), Cmd: nonNil(img.cmd), WorkDir: img.workDir, User: img.user, BuildOnly: img.buildOnly,
		Types: img.types, Caches: img.caches, Secrets: img.secrets, Tags: img.tags,
		Annots: pairs(img.annots), Volumes: img.volumes, Ports: img.ports,
	}
	for _, err := range img.errs {
		w.Errs = append(w.Errs, err.Error())
	}
	w.Base = e.base(img.base)
	for _, st := range img.steps {
		ws := wireStep{Script: st.Script, Pos: st.Pos}
		if im := st.Import; im != nil {
			ws.Import = &wireImport{Source: e.source(im.Source), Dest: im.Dest, Mode: im.Mode, UID: im.UID, GID: im.GID}
		}
		w.Steps = append(w.Steps, ws)
	}
	for _, st := range img.labelGens {
		w.LabelGens = append(w.LabelGens, wireStep{Script: st.Script, Pos: st.Pos})
	}
	for _, b := range img.binds {
		w.Binds = append(w.Binds, wireBind{Source: b.Source, RawSource: b.rawSource, Dest: b.Dest, ReadOnly: b.ReadOnly,
			ContentKey: b.ContentKey, KeyPaths: b.KeyPaths, Pos: b.Pos})
	}
	e.images[n] = w
	return n
}

func (e *encoder) base(b Base) *wireBase {
	switch b := b.(type) {
	case nil:
		return nil
	case scratchBase:
		return &wireBase{Kind: "scratch"}
	case *Image:
		if b == nil {
			return nil
		}
		return &wireBase{Kind: "image", Image: e.image(b)}
	case *LayoutBase:
		return &wireBase{Kind: "layout", Path: b.Path, Tag: b.Tag, Raw: b.raw, Pos: b.pos}
	case *PullBase:
		return &wireBase{Kind: "pull", Ref: b.Ref, Insecure: b.Insecure, Platform: b.Platform, Pos: b.pos}
	case *TarballBase:
		return &wireBase{Kind: "tarball", Path: b.Path, URL: b.URL, SHA256: b.Remote.SHA256, Raw: b.raw, Pos: b.pos}
	}
	// Base is a closed set: only this package implements it.
	panic(fmt.Sprintf("dsl: base of unknown type %T", b))
}

func (e *encoder) source(s Source) wireSource {
	switch s := s.(type) {
	case *LocalSource:
		kind := "file"
		if s.Want == KindDir {
			kind = "folder"
		}
		return wireSource{Kind: kind, Path: s.Path, Raw: s.raw, Exclude: s.Exclude, Pos: s.pos}
	case *URLSource:
		return wireSource{Kind: "url", URL: s.URL, SHA256: s.SHA256, Pos: s.pos}
	case *ImageSource:
		w := wireSource{Kind: "image", Path: s.Path, Image: -1, Pos: s.pos}
		if s.Image != nil {
			w.Image = e.image(s.Image)
		}
		return w
	}
	panic(fmt.Sprintf("dsl: import source of unknown type %T", s))
}

// nonNil keeps "set to nothing" (Entrypoint() clears an inherited one)
// apart from "not set": JSON writes a pointer to a nil slice as null, which
// reads back as not set.
func nonNil(p *[]string) *[]string {
	if p == nil || *p != nil {
		return p
	}
	return &[]string{}
}

func pairs(list []kv) [][2]string {
	var out [][2]string
	for _, p := range list {
		out = append(out, [2]string{p.k, p.v})
	}
	return out
}

func unpairs(list [][2]string) []kv {
	var out []kv
	for _, p := range list {
		out = append(out, kv{p[0], p[1]})
	}
	return out
}

type decoder struct {
	doc    *wireDoc
	images []*Image
}

func (d *decoder) image(n int) (*Image, error) {
	if n < 0 || n >= len(d.images) {
		return nil, fmt.Errorf("image #%d does not exist", n)
	}
	if img := d.images[n]; img != nil {
		return img, nil
	}
	w := d.doc.Images[n]
	img := &Image{
		name: w.Name, defined: w.Defined, lastEdit: w.LastEdit, basePos: w.BasePos,
		env: unpairs(w.Env), buildEnv: unpairs(w.BuildEnv), labels: unpairs(w.Labels), annots: unpairs(w.Annots), volumes: w.Volumes, ports: w.Ports,
		entry: w.Entry, cmd: w.Cmd, workDir: w.WorkDir, user: w.User, buildOnly: w.BuildOnly,
		types: w.Types, caches: w.Caches, secrets: w.Secrets, tags: w.Tags,
	}
	// Registered before its base and sources are decoded: a definition
	// cannot reach itself, but a malformed document must not recurse
	// forever.
	d.images[n] = img
	for _, msg := range w.Errs {
		img.errs = append(img.errs, errors.New(msg))
	}
	var err error
	if img.base, err = d.base(w.Base); err != nil {
		return nil, fmt.Errorf("image %q: %w", w.Name, err)
	}
	for _, ws := range w.LabelGens {
		img.labelGens = append(img.labelGens, Step{Script: ws.Script, Pos: ws.Pos})
	}
	for _, ws := range w.Steps {
		st := Step{Script: ws.Script, Pos: ws.Pos}
		if wi := ws.Import; wi != nil {
			src, err := d.source(wi.Source)
			if err != nil {
				return nil, fmt.Errorf("image %q: %s: %w", w.Name, ws.Pos, err)
			}
			st.Import = &ImportStep{Source: src, Dest: wi.Dest, Mode: wi.Mode, UID: wi.UID, GID: wi.GID}
		}
		img.steps = append(img.steps, st)
	}
	for _, b := range w.Binds {
		img.binds = append(img.binds, Bind{Source: b.Source, rawSource: b.RawSource, Dest: b.Dest, ReadOnly: b.ReadOnly,
			ContentKey: b.ContentKey, KeyPaths: b.KeyPaths, Pos: b.Pos})
	}
	return img, nil
}

func (d *decoder) base(w *wireBase) (Base, error) {
	if w == nil {
		return nil, nil
	}
	switch w.Kind {
	case "scratch":
		return scratchBase{}, nil
	case "image":
		return d.image(w.Image)
	case "layout":
		return &LayoutBase{Path: w.Path, Tag: w.Tag, raw: w.Raw, pos: w.Pos}, nil
	case "pull":
		return &PullBase{Ref: w.Ref, Insecure: w.Insecure, Platform: w.Platform, pos: w.Pos}, nil
	case "tarball":
		return &TarballBase{Path: w.Path, URL: w.URL, Remote: Remote{SHA256: w.SHA256}, raw: w.Raw, pos: w.Pos}, nil
	}
	return nil, fmt.Errorf("base of unknown kind %q", w.Kind)
}

func (d *decoder) source(w wireSource) (Source, error) {
	switch w.Kind {
	case "file":
		return &LocalSource{Path: w.Path, Want: KindFile, raw: w.Raw, pos: w.Pos}, nil
	case "folder":
		return &LocalSource{Path: w.Path, Want: KindDir, Exclude: w.Exclude, raw: w.Raw, pos: w.Pos}, nil
	case "url":
		return &URLSource{URL: w.URL, SHA256: w.SHA256, pos: w.Pos}, nil
	case "image":
		s := &ImageSource{Path: w.Path, pos: w.Pos}
		if w.Image >= 0 {
			img, err := d.image(w.Image)
			if err != nil {
				return nil, err
			}
			s.Image = img
		}
		return s, nil
	}
	return nil, fmt.Errorf("import source of unknown kind %q", w.Kind)
}
