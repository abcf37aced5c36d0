package runtime

import (
	"fmt"
	"slices"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage"
)

// decider chooses what a build does with one image: reuse its cached
// layer, encode a layer type its record lacks, or run its steps. It is the
// only place that weighs the store's record against the definition: Build
// acts on its answer, and Plan (strata graph, build --dry-run, publish's
// readiness check) prints the same answer.
type decider struct {
	// records are the store's; nil decides as for an empty store.
	records Records
	noCache bool
	// noVerity looks for squashfs and erofs blobs without a dm-verity
	// tree (--no-verity).
	noVerity bool
	// needs are the layer types each image's record must hold at the end
	// of the build (see layerNeeds).
	needs map[*dsl.Node][]layertype.Type
}

// decision is what a build does with one image, and why.
type decision struct {
	action Action
	// reason says why the steps run; empty otherwise.
	reason string
	// rec is the image's record, for Reuse and Encode.
	rec *storage.Record
	// missing are the layer types Encode adds to rec.
	missing []layertype.Type
}

func (d decider) decide(n *dsl.Node) (decision, error) {
	switch {
	case n.Volatile:
		return decision{action: RunSteps, reason: volatileReason(n)}, nil
	case d.noCache:
		return decision{action: RunSteps, reason: "--no-cache"}, nil
	case d.records == nil:
		return decision{action: RunSteps, reason: "not built before"}, nil
	}
	rec, dropped, err := d.records.Lookup(n.Key)
	if err != nil {
		return decision{}, fmt.Errorf("image %q: cache: %w", n.Name, err)
	}
	switch {
	case rec == nil && dropped != "":
		return decision{action: RunSteps, reason: "cache entry dropped: " + dropped}, nil
	case rec == nil:
		return decision{action: RunSteps, reason: explain(d.records.Last(n.Name), n)}, nil
	}
	if rec.Empty {
		return decision{action: Reuse, rec: rec}, nil
	}
	if missing := missingTypes(rec, d.needs[n], !d.noVerity); len(missing) > 0 {
		return decision{action: Encode, rec: rec, missing: missing}, nil
	}
	return decision{action: Reuse, rec: rec}, nil
}

// explain says why n runs its steps again, from the key inputs of the last
// record of an image of its name.
func explain(last *storage.Record, n *dsl.Node) string {
	if last == nil {
		return "not built before"
	}
	return dsl.Explain(last.KeyInputs, n)
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

// layerNeeds are the layer types each of nodes must hold at the end of
// their build: its own, plus those of every image of the build tagged on
// top of it, whose manifests list its layer in their own type.
func layerNeeds(nodes []*dsl.Node) map[*dsl.Node][]layertype.Type {
	needs := make(map[*dsl.Node][]layertype.Type, len(nodes))
	add := func(n *dsl.Node, types []layertype.Type) {
		for _, t := range types {
			if !slices.Contains(needs[n], t) {
				needs[n] = append(needs[n], t)
			}
		}
	}
	for _, n := range nodes {
		add(n, n.LayerTypes)
	}
	for _, m := range nodes {
		if m.Image.IsBuildOnly() {
			continue
		}
		for p := m.Parent; p != nil; p = p.Parent {
			if _, ok := needs[p]; ok {
				add(p, m.LayerTypes)
			}
		}
	}
	return needs
}
