package dsl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
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
	// BaseDigest is the manifest digest of a layout base.
	BaseDigest string
	// Deps are the nodes that must be built before this one.
	Deps []*Node
	// Imports holds the content digest of each Import step, by step index.
	Imports map[int]string
	// Key is the content-addressed cache key of the node's layer.
	Key string
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
	// LayerTypes are the encodings every layer is committed in.
	LayerTypes []string
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
// into a Graph. Every problem found is reported, not just the first.
func Evaluate(images []*Image, opts Options) (*Graph, error) {
	ev := &evaluator{opts: opts, seen: map[string]*Node{}, byPtr: map[*Image]*Node{}}
	roots := slices.Clone(images)
	sort.SliceStable(roots, func(a, b int) bool { return roots[a].name < roots[b].name })
	for _, img := range roots {
		if img == nil {
			ev.problems = append(ev.problems, errors.New("a nil *dsl.Image was given to Evaluate"))
			continue
		}
		ev.visit(img)
	}
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
}

func (ev *evaluator) problem(err error) { ev.problems = append(ev.problems, err) }

func (ev *evaluator) visit(img *Image) *Node {
	if n, ok := ev.byPtr[img]; ok {
		return n
	}
	n := &Node{Name: img.name, Image: img, Imports: map[int]string{}}
	ev.byPtr[img] = n
	for _, err := range img.errs {
		ev.problem(err)
	}

	var parentKey string
	switch b := img.base.(type) {
	case nil:
		ev.problem(fmt.Errorf("%s: image %q has no base: add .From(dsl.Scratch()), .From(dsl.Layout(...)) or .From(anotherImage)", img.defined, img.name))
	case *Image:
		n.Parent = ev.visit(b)
		n.Deps = append(n.Deps, n.Parent)
		parentKey = n.Parent.Key
	case scratchBase:
		n.Base = b
		parentKey = "scratch"
	case *LayoutBase:
		n.Base = b
		d, err := layoutDigest(b.Path, b.Tag)
		if err != nil {
			ev.problem(fmt.Errorf("%s: image %q: base %w", img.basePos, img.name, err))
		}
		n.BaseDigest = d
		parentKey = "layout:" + d
	}

	for idx, st := range img.steps {
		if st.Import == nil {
			continue
		}
		d, err := sourceDigest(st.Import.Source)
		if err != nil {
			ev.problem(fmt.Errorf("%s: image %q: import to %s: %w", st.Pos, img.name, st.Import.Dest, err))
			continue
		}
		n.Imports[idx] = d
	}

	if prev, ok := ev.seen[img.name]; ok && prev != n {
		// Two values with one name are fine when they are the same
		// definition (a function called twice); otherwise which one wins
		// would be an accident of evaluation order.
		n.KeyInputs, n.Key = ev.key(n, parentKey)
		if prev.Key != n.Key {
			ev.problem(fmt.Errorf("%s: image name %q is used by two different definitions (the other is at %s)", img.lastEdit, img.name, prev.Image.lastEdit))
		}
		ev.byPtr[img] = prev
		return prev
	}
	ev.seen[img.name] = n
	n.KeyInputs, n.Key = ev.key(n, parentKey)
	ev.order = append(ev.order, n)
	return n
}

// keyDoc is the canonical document a cache key is the digest of. Fields
// that only change the image config (entrypoint, labels, ...) are not in it:
// a new label writes a new config without running any step.
type keyDoc struct {
	Version  int       `json:"v"`
	Parent   string    `json:"parent"`
	Steps    []keyStep `json:"steps"`
	Env      []string  `json:"env,omitempty"`
	BuildEnv []string  `json:"buildEnv,omitempty"`
	WorkDir  string    `json:"workDir,omitempty"`
	Epoch    int64     `json:"sourceDateEpoch"`
	Types    []string  `json:"types"`
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

func (ev *evaluator) key(n *Node, parent string) ([]byte, string) {
	img := n.Image
	doc := keyDoc{Version: 1, Parent: parent, Epoch: ev.opts.SourceDateEpoch, WorkDir: img.workDir, Types: ev.opts.LayerTypes}
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
		doc.Steps = append(doc.Steps, keyStep{Import: &keyImport{Digest: n.Imports[idx], Dest: im.Dest, Mode: im.Mode, UID: im.UID, GID: im.GID}})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // plain strings and numbers always marshal
	}
	sum := sha256.Sum256(b)
	return b, "sha256:" + hex.EncodeToString(sum[:])
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

func statKind(path string, want Kind) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
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
