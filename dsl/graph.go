package dsl

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
)

// Graph is the evaluated, validated form of a set of definitions.
type Graph struct {
	// Nodes lists every image, each after everything it depends on; ties
	// are broken by name so the order is the same on every run.
	Nodes  []*Node
	byName map[string]*Node
}

// Node is one image of a Graph.
type Node struct {
	Name  string
	Image *Image
	// Parent is the node of the base when the base is another definition.
	Parent *Node
	// Base is the external base (Scratch or a *LayoutBase) at the root of
	// the chain; nil when Parent is set.
	Base Base
	// BaseDigest identifies the content of an external base: the
	// manifest digest of a layout base, the manifest or index digest of a
	// registry base, the sha256 of a tarball.
	BaseDigest digest.Digest
	// Deps are the nodes that must be built before this one: the parent
	// and the images imports are taken from.
	Deps []*Node
	// Imports holds the content digest of each Import step of a local
	// file or folder or of a URL, by step index.
	Imports map[int]digest.Digest
	// ImportNodes holds the node of each FromImage import, by step index:
	// its Key stands for the imported content.
	ImportNodes map[int]*Node
	// LayerTypes are the encodings of the node's layer: the image's own
	// or the build's.
	LayerTypes []LayerType
	// Params are the build parameters the definition's ${{KEY}}
	// placeholders used, with their values.
	Params map[string]string
	// BindDigests holds the content digest of each bind keyed by its
	// content (see ContentKey), by bind index.
	BindDigests map[int]digest.Digest
	// Volatile is set when the image (or one it depends on) has host binds
	// not keyed by their content: what its steps read through them cannot
	// be hashed, so it is rebuilt every time.
	Volatile bool
	// Key is the content-addressed cache key of the node's layer.
	Key digest.Digest
	// KeyInputs is the canonical document Key is the digest of; comparing
	// two of them says why a key changed.
	KeyInputs []byte
}

// Options are the build-wide settings that change what a definition
// produces.
type Options struct {
	// SourceDateEpoch is the time, in Unix seconds, written as every
	// timestamp of the output.
	SourceDateEpoch int64
	// LayerTypes are the build's default encodings (default tar+gzip).
	LayerTypes []LayerType
	// Params are the build parameters for ${{KEY}} placeholders; nil means
	// the process's own (see Params).
	Params map[string]string
	// Resolver finds the digests of remote bases and imports; without one,
	// only bases and URLs pinned by digest can be evaluated.
	Resolver Resolver
	// AllowUnpinnedURLs lets URL imports and tarballs go without a sha256.
	AllowUnpinnedURLs bool
	// FS is the file system evaluation reads the local sources it hashes
	// from: File and Dir imports, local Layout and Tarball bases, binds.
	// nil means the operating system's. Its names are the absolute paths
	// the definitions resolved (a relative path is joined to the folder of
	// the Go file that wrote it; see Pos) without the leading slash, the
	// names os.DirFS("/") takes; so an in-memory file system must hold the
	// files under that folder. They are hashed as from the operating
	// system: the same files with the same modes give the same keys.
	// Symlinks are read through fs.ReadLinkFS; a file system without it
	// has none.
	//
	// Only evaluation reads FS, so that a unit test can evaluate
	// definitions against files it makes up (an afero.Fs through
	// dsl/aferofs, say); a build reads its imports and binds from the
	// operating system.
	FS fs.FS
	// Digests, when set, remembers the sha256 of a Tarball base's file by
	// what a stat of it says, so that evaluation reads a tarball that did
	// not change only once (a Debian base is tens of MB: hashing it again
	// would be most of a cached build).
	Digests FileDigests
}

// FileDigests remembers the sha256 of whole files. Digest returns the one
// remembered for path when info (from a stat of the open file: its
// device, inode, size, modification and change times) still describes
// the file it was taken of; Remember records d, just read from the file
// info describes. A FileDigests may decline to remember (a file changed
// too recently for its times to tell a later change apart).
type FileDigests interface {
	Digest(path string, info fs.FileInfo) (digest.Digest, bool)
	Remember(path string, info fs.FileInfo, d digest.Digest)
}

// Resolver finds what evaluation cannot know without the network: the
// manifest digest a registry tag points at, the digest of an unpinned
// download. strata build passes one that asks the registry (one small
// request per tag) and downloads into the store. Its requests end with
// the ctx Evaluate was given.
type Resolver interface {
	// BaseDigest returns the digest identifying the content of a *PullBase
	// or *TarballBase.
	BaseDigest(ctx context.Context, b Base) (digest.Digest, error)
	// SourceDigest returns the content digest of a *URLSource.
	SourceDigest(ctx context.Context, s Source) (digest.Digest, error)
}

// Error is a list of problems found while evaluating definitions, each
// naming the image and the Go file:line responsible.
type Error struct{ Problems []error }

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for n, p := range e.Problems {
		lines[n] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems.
func (e *Error) Unwrap() []error { return e.Problems }

// Evaluate validates the definitions reachable from images and lowers them
// into a Graph. Every problem found is reported, not just the first. ctx
// bounds what opts.Resolver asks the network.
func Evaluate(ctx context.Context, images []*Image, opts Options) (*Graph, error) {
	if len(opts.LayerTypes) == 0 {
		opts.LayerTypes = []LayerType{TarGzip}
	}
	ev := &evaluator{opts: opts, seen: map[string]*Node{}, byPtr: map[*Image]*Node{}, missing: map[string][]string{}, src: osFS{}}
	if opts.FS != nil {
		ev.src = ioFS{opts.FS}
	}
	if opts.Params == nil {
		p, err := Params()
		if err != nil {
			return nil, err
		}
		ev.opts.Params = p
	}
	ev.problems = append(ev.problems, pendingParamErrors()...)
	// Parsed here, not where the types are encoded: the graph is what the
	// builder trusts. A conversion of a name --layer-type takes
	// (LayerType("tar")) is accepted as the flag accepts it.
	ev.opts.LayerTypes = make([]LayerType, len(opts.LayerTypes))
	for i, t := range opts.LayerTypes {
		var err error
		if ev.opts.LayerTypes[i], err = layertype.Parse(string(t)); err != nil {
			ev.problem(fmt.Errorf("Options.LayerTypes: %w", err))
		}
	}
	roots := slices.Clone(images)
	sort.SliceStable(roots, func(a, b int) bool { return roots[a].name < roots[b].name })
	for _, img := range roots {
		if img == nil {
			ev.problems = append(ev.problems, errors.New("a nil *dsl.Image was given to Evaluate"))
			continue
		}
		ev.visit(ctx, img)
	}
	ev.reportMissingParams()
	if len(ev.problems) > 0 {
		return nil, &Error{Problems: ev.problems}
	}
	g := &Graph{Nodes: ev.order, byName: ev.seen}
	return g, nil
}

type evaluator struct {
	opts     Options
	seen     map[string]*Node
	byPtr    map[*Image]*Node
	order    []*Node
	problems []error
	// missing maps a parameter nobody set to the definitions needing it.
	missing map[string][]string
	// src is what local sources are read from (Options.FS).
	src sourceFS
}

func (ev *evaluator) reportMissingParams() {
	keys := make([]string, 0, len(ev.missing))
	for k := range ev.missing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ev.problem(fmt.Errorf("build parameter %s is not set (strata build --set %s=VALUE); needed by %s", k, k, strings.Join(ev.missing[k], ", ")))
	}
}

func (ev *evaluator) problem(err error) { ev.problems = append(ev.problems, err) }

func (ev *evaluator) visit(ctx context.Context, orig *Image) *Node {
	if n, ok := ev.byPtr[orig]; ok {
		return n
	}
	img, used, missing := expandImage(orig, ev.opts.Params)
	for _, k := range missing {
		ev.missing[k] = append(ev.missing[k], fmt.Sprintf("image %q (%s)", img.name, img.defined))
	}
	n := &Node{Name: img.name, Image: img, Imports: map[int]digest.Digest{}, ImportNodes: map[int]*Node{}, Params: used}
	ev.byPtr[orig] = n
	for _, err := range img.errs {
		ev.problem(err)
	}
	n.LayerTypes = img.types
	if len(n.LayerTypes) == 0 {
		n.LayerTypes = ev.opts.LayerTypes
	}

	parentKey := ev.base(ctx, n)
	ev.imports(ctx, n)
	for idx, b := range img.binds {
		if _, err := ev.src.Stat(b.Source); err != nil {
			ev.problem(fmt.Errorf("%s: image %q: bind source %s does not exist", b.Pos, img.name, b.Source))
			continue
		}
		if !b.ContentKey {
			n.Volatile = true
			continue
		}
		d, err := bindDigest(ev.src, b)
		if err != nil {
			ev.problem(fmt.Errorf("%s: image %q: bind %s: content key: %w", b.Pos, img.name, b.Source, err))
			continue
		}
		if n.BindDigests == nil {
			n.BindDigests = map[int]digest.Digest{}
		}
		n.BindDigests[idx] = d
	}
	for _, d := range n.Deps {
		n.Volatile = n.Volatile || d.Volatile
	}

	if prev, ok := ev.seen[img.name]; ok && prev != n {
		// Two values with one name are fine when they are the same
		// definition (a function called twice); otherwise which one wins
		// would be an accident of evaluation order.
		n.KeyInputs, n.Key = ev.key(n, parentKey)
		if prev.Key != n.Key || outputDoc(prev) != outputDoc(n) {
			ev.problem(fmt.Errorf("%s: image name %q is used by two different definitions (the other is at %s)", img.lastEdit, img.name, prev.Image.lastEdit))
		}
		ev.byPtr[orig] = prev
		return prev
	}
	ev.seen[img.name] = n
	n.KeyInputs, n.Key = ev.key(n, parentKey)
	ev.order = append(ev.order, n)
	return n
}

// outputDoc is what a node contributes to the output besides its layer:
// two definitions with one name must agree on it too.
func outputDoc(n *Node) string {
	b, _ := json.Marshal(struct {
		Config    ispec.ImageConfig
		Tags      []string
		BuildOnly bool
		Types     []LayerType
	}{n.Config(ispec.ImageConfig{}), n.Image.tags, n.Image.buildOnly, n.LayerTypes})
	return string(b)
}

// base resolves the node's base and returns what its key builds on.
func (ev *evaluator) base(ctx context.Context, n *Node) string {
	img := n.Image
	fail := func(err error) string {
		ev.problem(fmt.Errorf("%s: image %q: base %w", img.basePos, img.name, err))
		return "unresolved"
	}
	switch b := img.base.(type) {
	case nil:
		ev.problem(fmt.Errorf("%s: image %q has no base: add .From(dsl.Scratch()), .From(dsl.Layout(...)) or .From(anotherImage)", img.defined, img.name))
		return "none"
	case *Image:
		n.Parent = ev.visit(ctx, b)
		n.Deps = append(n.Deps, n.Parent)
		return n.Parent.Key.String()
	case scratchBase:
		n.Base = b
		return "scratch"
	case *LayoutBase:
		n.Base = b
		d, err := layoutDigest(ev.src, b.Path, b.Tag)
		if err != nil {
			return fail(err)
		}
		n.BaseDigest = d
		return "layout:" + d.String()
	case *PullBase:
		n.Base = b
		if _, d, ok := strings.Cut(b.Ref, "@"); ok {
			// Not checked here: pulling the base checks it.
			n.BaseDigest = digest.Digest(d)
			return "image:" + d + platformKey(b) // an index digest names every platform
		}
		if ev.opts.Resolver == nil {
			return fail(fmt.Errorf("%s is a tag: resolving it needs the registry (pin it with @sha256:... to evaluate offline)", b.Ref))
		}
		d, err := ev.opts.Resolver.BaseDigest(ctx, b)
		if err != nil {
			return fail(err)
		}
		n.BaseDigest = d
		return "image:" + d.String() + platformKey(b)
	case *TarballBase:
		n.Base = b
		var d digest.Digest
		var err error
		name := b.Path
		if name == "" {
			name = b.URL
		}
		switch {
		case b.Remote.SHA256 != "" && !isSHA256Hex(b.Remote.SHA256):
			err = fmt.Errorf("tarball %s: %q is not a sha256 digest in hex (64 characters)", name, b.Remote.SHA256)
		case b.Path != "":
			d, err = fileDigest(ev.src, b.Path, ev.opts.Digests)
			// A pin on a local file is a promise about its content, as on a
			// URL: a file replaced by another must fail here rather than
			// rebuild on content nobody reviewed. The runtime then copies
			// the file into the store checked against d, so what it unpacks
			// is what was checked here (or what Options.Digests vouched for
			// by the file's stat, when it knew the file).
			if err == nil && b.Remote.SHA256 != "" && d != digest.NewDigestFromEncoded(digest.SHA256, b.Remote.SHA256) {
				err = fmt.Errorf("tarball %s: expected sha256:%s, got %s: the file does not match its pin", b.Path, b.Remote.SHA256, d)
			}
		case b.Remote.SHA256 != "":
			d = digest.NewDigestFromEncoded(digest.SHA256, b.Remote.SHA256)
		case !ev.opts.AllowUnpinnedURLs:
			err = fmt.Errorf("tarball %s has no sha256: pin it with dsl.SHA256(...) or build with --allow-unpinned-urls", b.URL)
		case ev.opts.Resolver == nil:
			err = fmt.Errorf("tarball %s has no sha256 and nothing can download it here", b.URL)
		default:
			d, err = ev.opts.Resolver.BaseDigest(ctx, b)
		}
		if err != nil {
			return fail(err)
		}
		n.BaseDigest = d
		return "tarball:" + d.String()
	default:
		return fail(fmt.Errorf("of unsupported type %T", b))
	}
}

func isSHA256Hex(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// imports records the content digest of every import.
func (ev *evaluator) imports(ctx context.Context, n *Node) {
	img := n.Image
	// Imports that share a base name are all copied; which of them
	// ImportDir shows under that name is the sandbox's to decide (the
	// last, see Image.Import), so nothing is refused here.
	for idx, st := range img.steps {
		if st.Import == nil {
			continue
		}
		im := st.Import
		fail := func(err error) {
			ev.problem(fmt.Errorf("%s: image %q: import to %s: %w", st.Pos, img.name, im.Dest, err))
		}
		switch s := im.Source.(type) {
		case *LocalSource:
			d, err := sourceDigest(ev.src, s)
			if err != nil {
				fail(err)
				continue
			}
			n.Imports[idx] = d
		case *URLSource:
			switch {
			case s.SHA256 != "":
				if !isSHA256Hex(s.SHA256) {
					fail(fmt.Errorf("%q is not a sha256 digest in hex (64 characters)", s.SHA256))
					continue
				}
				n.Imports[idx] = digest.NewDigestFromEncoded(digest.SHA256, s.SHA256)
			case !ev.opts.AllowUnpinnedURLs:
				fail(fmt.Errorf("URL %s has no sha256: give it as dsl.URL(url, \"<sha256 hex>\") or build with --allow-unpinned-urls", s.URL))
			case ev.opts.Resolver == nil:
				fail(fmt.Errorf("URL %s has no sha256 and nothing can download it here", s.URL))
			default:
				d, err := ev.opts.Resolver.SourceDigest(ctx, s)
				if err != nil {
					fail(err)
					continue
				}
				n.Imports[idx] = d
			}
		case *ImageSource:
			if s.Image == nil {
				fail(errors.New("dsl.FromImage of a nil image"))
				continue
			}
			if !path.IsAbs(s.Path) {
				fail(fmt.Errorf("path %q in image %s must be absolute", s.Path, s.Image.name))
				continue
			}
			dep := ev.visit(ctx, s.Image)
			n.ImportNodes[idx] = dep
			if !slices.Contains(n.Deps, dep) {
				n.Deps = append(n.Deps, dep)
			}
		default:
			fail(fmt.Errorf("unsupported source %T", s))
		}
	}
}

// keyDoc is the canonical document a cache key is the digest of. Fields
// that only change the image config (entrypoint, labels, ...) are not in it:
// a new label writes a new config without running any step.
type keyDoc struct {
	Version int `json:"v"`
	// Name is the hostname of the steps, so it can change what they write.
	Name   string    `json:"name"`
	Parent string    `json:"parent"`
	Steps  []keyStep `json:"steps"`
	// LabelScripts are the GenerateLabels scripts: the labels they make
	// are kept with the layer.
	LabelScripts []string `json:"labelScripts,omitempty"`
	Env          []string `json:"env,omitempty"`
	BuildEnv     []string `json:"buildEnv,omitempty"`
	WorkDir      string   `json:"workDir,omitempty"`
	Epoch        int64    `json:"sourceDateEpoch"`
	Binds        []string `json:"binds,omitempty"`
	// Params repeats the placeholder values already expanded into the
	// steps, so that an explanation can name the parameter.
	Params map[string]string `json:"params,omitempty"`
}

type keyStep struct {
	Run    string     `json:"run,omitempty"`
	Import *keyImport `json:"import,omitempty"`
}

type keyImport struct {
	Digest string  `json:"digest"`
	Dest   string  `json:"dest"`
	Mode   *uint32 `json:"mode,omitempty"`
	UID    *int    `json:"uid,omitempty"`
	GID    *int    `json:"gid,omitempty"`
}

func (ev *evaluator) key(n *Node, parent string) ([]byte, digest.Digest) {
	img := n.Image
	doc := keyDoc{Version: 2, Name: img.name, Parent: parent, Epoch: ev.opts.SourceDateEpoch, WorkDir: img.workDir}
	if len(n.Params) > 0 {
		doc.Params = n.Params
	}
	for idx, b := range img.binds {
		bind := fmt.Sprintf("%s:%s:%v", b.Source, b.Dest, b.ReadOnly)
		if d, ok := n.BindDigests[idx]; ok {
			bind += ":" + d.String()
		}
		doc.Binds = append(doc.Binds, bind)
	}
	for _, e := range img.env {
		doc.Env = append(doc.Env, e.k+"="+e.v)
	}
	for _, e := range img.buildEnv {
		doc.BuildEnv = append(doc.BuildEnv, e.k+"="+e.v)
	}
	for idx, st := range img.steps {
		if st.Import == nil {
			doc.Steps = append(doc.Steps, keyStep{Run: st.Script})
			continue
		}
		im := st.Import
		doc.Steps = append(doc.Steps, keyStep{Import: &keyImport{Digest: importKey(n, idx, im.Source), Dest: im.Dest, Mode: im.Mode, UID: im.UID, GID: im.GID}})
	}
	for _, st := range img.labelGens {
		doc.LabelScripts = append(doc.LabelScripts, st.Script)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // plain strings and numbers always marshal
	}
	return b, digest.FromBytes(b)
}

// importKey is what the key document holds for the import at step idx:
// its content digest, or for a FromImage import its producer's key and
// the path, since the same key builds the same rootfs.
func importKey(n *Node, idx int, src Source) string {
	if s, ok := src.(*ImageSource); ok {
		if dep := n.ImportNodes[idx]; dep != nil {
			return "image:" + dep.Key.String() + ":" + path.Clean(s.Path)
		}
		return ""
	}
	return n.Imports[idx].String()
}

// Node returns the node named name, or nil.
func (g *Graph) Node(name string) *Node { return g.byName[name] }

// Select returns the nodes needed to build the named images (all when
// names is empty), dependencies first.
func (g *Graph) Select(names ...string) ([]*Node, error) {
	if len(names) == 0 {
		return g.Nodes, nil
	}
	want := map[*Node]bool{}
	var mark func(n *Node)
	mark = func(n *Node) {
		if want[n] {
			return
		}
		want[n] = true
		for _, d := range n.Deps {
			mark(d)
		}
	}
	var unknown []string
	for _, name := range names {
		n := g.byName[name]
		if n == nil {
			unknown = append(unknown, name)
			continue
		}
		mark(n)
	}
	if len(unknown) > 0 {
		known := make([]string, 0, len(g.Nodes))
		for _, n := range g.Nodes {
			known = append(known, n.Name)
		}
		return nil, fmt.Errorf("no image named %s; the images are: %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	var out []*Node
	for _, n := range g.Nodes {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Chain returns the node's ancestors from the root of its chain down to
// the node itself.
func (n *Node) Chain() []*Node {
	var chain []*Node
	for c := n; c != nil; c = c.Parent {
		chain = append(chain, c)
	}
	slices.Reverse(chain)
	return chain
}

// Root returns the external base at the root of the node's chain.
func (n *Node) Root() *Node { return n.Chain()[0] }

func statKind(fsys sourceFS, path string, want Kind) error {
	fi, err := fsys.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s %s does not exist", want, path)
		}
		return err
	}
	if want == KindDir && !fi.IsDir() {
		return fmt.Errorf("%s is not a folder (use dsl.File for a file)", path)
	}
	if want == KindFile && fi.IsDir() {
		return fmt.Errorf("%s is a folder (use dsl.Dir for a folder)", path)
	}
	return nil
}

// platformKey distinguishes, in a cache key, the platforms chosen from one
// multi-platform index.
func platformKey(b *PullBase) string {
	if b.Platform == "" {
		return ""
	}
	return "@" + b.Platform
}

// bindDigest is the content digest of a bind keyed by its content: of the
// whole bind, or of its KeyPaths (each named in the hash, so moving
// content from one to another changes it), hashed as imports are, from
// fsys.
func bindDigest(fsys sourceFS, b Bind) (digest.Digest, error) {
	root, err := evalSymlinks(fsys, b.Source)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if len(b.KeyPaths) == 0 {
		if err := hashTree(fsys, h, root, wholeTree); err != nil {
			return "", err
		}
		return digest.NewDigest(digest.SHA256, h), nil
	}
	for _, p := range b.KeyPaths {
		p = path.Clean(p)
		target, err := evalSymlinks(fsys, filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return "", fmt.Errorf("key path %s: %w", p, err)
		}
		fmt.Fprintf(h, "path %q\n", p)
		if err := hashTree(fsys, h, target, wholeTree); err != nil {
			return "", err
		}
	}
	return digest.NewDigest(digest.SHA256, h), nil
}
