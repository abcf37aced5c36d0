package runtime

import (
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
	// NoVerity plans for squashfs and erofs layers without dm-verity.
	NoVerity bool
}

// Plan says, without running anything, what a build of nodes (in the
// order Build receives them: dependencies first) would do with each image
// and why. It asks the decider Build asks, so `strata graph` and
// `strata build --dry-run` give the answer the build will. It cannot know
// what a registry cache (--cache-from) holds, so it plans images only
// found there as built.
func Plan(nodes []*dsl.Node, opts PlanOptions) ([]PlanItem, error) {
	d := decider{noCache: opts.NoCache, noVerity: opts.NoVerity, needs: layerNeeds(nodes)}
	if opts.Store != nil { // a nil *storage.Store in Records would not be nil
		d.records = opts.Store
	}
	out := make([]PlanItem, 0, len(nodes))
	for _, n := range nodes {
		dec, err := d.decide(n)
		if err != nil {
			return nil, err
		}
		it := PlanItem{Node: n, Action: dec.action, Reason: dec.reason}
		if dec.action == Encode {
			it.Reason = "as " + joinTypes(dec.missing)
		}
		out = append(out, it)
	}
	return out, nil
}
