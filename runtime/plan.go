package runtime

import (
	"fmt"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/storage"
)

// Action is what a build would do with one image.
type Action string

// The actions of a plan.
const (
	// Reuse: the store holds the image's layer in every type needed.
	Reuse Action = "cached"
	// Encode: the layer is cached but a layer type is missing; it would be
	// encoded from the committed layer folder without running a step.
	Encode Action = "encode"
	// RunSteps: the image's steps would run.
	RunSteps Action = "build"
)

// PlanItem is what a build would do with one image, and why.
type PlanItem struct {
	Node   *dsl.Node
	Action Action
	// Reason says why the steps would run, or which layer types would be
	// encoded; empty for Reuse.
	Reason string
}

// String is the one-line account of the item that `strata graph` and
// `strata build --dry-run` print: "cached", "build: step 2 changed
// (images.go:14)", "cached, encode as squashfs".
func (it PlanItem) String() string {
	switch it.Action {
	case Reuse:
		return "cached"
	case Encode:
		return "cached, encode " + it.Reason
	}
	return "build: " + it.Reason
}

// PlanOptions are the build settings that change a plan.
type PlanOptions struct {
	// Store is the store to look in; nil plans as for an empty store.
	Store *storage.Store
	// NoCache plans every image as rebuilt.
	NoCache bool
}

// Plan says, without running anything, what a build of nodes (in the
// order Build receives them: dependencies first) would do with each image
// and why. It reads the same records Build does, so `strata graph` and
// `strata build --dry-run` give the answer the build will. It cannot know
// what a registry cache (--cache-from) holds, so it plans images only
// found there as built.
func Plan(nodes []*dsl.Node, opts PlanOptions) ([]PlanItem, error) {
	// neededTypes looks at every image of the build; give it the set.
	b := &builder{results: map[*dsl.Node]*Result{}}
	for _, n := range nodes {
		b.results[n] = &Result{Name: n.Name}
	}
	out := make([]PlanItem, 0, len(nodes))
	for _, n := range nodes {
		it, err := planNode(b, n, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func planNode(b *builder, n *dsl.Node, opts PlanOptions) (PlanItem, error) {
	it := PlanItem{Node: n, Action: RunSteps}
	switch {
	case n.Volatile:
		it.Reason = volatileReason(n)
		return it, nil
	case opts.NoCache:
		it.Reason = "--no-cache"
		return it, nil
	case opts.Store == nil:
		it.Reason = "not built before"
		return it, nil
	}
	rec, dropped, err := opts.Store.Lookup(n.Key)
	if err != nil {
		return it, fmt.Errorf("image %q: cache: %w", n.Name, err)
	}
	switch {
	case rec != nil:
		if missing := missingTypes(rec, b.neededTypes(n)); len(missing) > 0 {
			it.Action, it.Reason = Encode, "as "+joinTypes(missing)
			return it, nil
		}
		it.Action = Reuse
	case dropped != "":
		it.Reason = "cache entry dropped: " + dropped
	default:
		it.Reason = explain(opts.Store.Last(n.Name), n)
	}
	return it, nil
}

// volatileReason says why the volatile node n is rebuilt at every build.
func volatileReason(n *dsl.Node) string {
	for _, b := range n.Image.Binds() {
		if !b.ContentKey {
			return "has host binds, whose content cannot be hashed"
		}
	}
	return "built on an image with host binds"
}
