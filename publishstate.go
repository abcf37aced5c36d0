package strata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
)

// strata publish without --build never builds: it publishes what the
// store holds for the images' current cache keys, and refuses images the
// store does not hold as they are defined now. Their manifests are tagged
// again in the build's layout first (a config-only change, an entrypoint
// say, keeps the cache key but not the manifest), through the runtime's
// own cached path, which runs no step when the plan says every image is
// cached.

// publishState plans the images nodes are built on, without building:
// chain is the published images and their parents, dependencies first
// (images they only import from are not needed to tag them), and problems
// says, by published image, why it cannot be published without a build.
func publishState(ctx context.Context, opts Options, g *dsl.Graph, nodes []*dsl.Node) (chain []*dsl.Node, problems map[string]string, err error) {
	want := map[*dsl.Node]bool{}
	for _, n := range nodes {
		for _, c := range n.Chain() {
			want[c] = true
		}
	}
	for _, n := range g.Nodes { // dependencies first
		if want[n] {
			chain = append(chain, n)
		}
	}
	plan, err := makePlan(ctx, opts, chain)
	if err != nil {
		return nil, nil, err
	}
	items := map[*dsl.Node]runtime.PlanItem{}
	for _, it := range plan {
		items[it.Node] = it
	}
	problems = map[string]string{}
	for _, n := range nodes {
		// The image itself first: its own state is what people ask about.
		ch := n.Chain()
		for i := len(ch) - 1; i >= 0; i-- {
			c := ch[i]
			it := items[c]
			if it.Action == runtime.Reuse {
				continue
			}
			why := notReady(it)
			if c == n {
				problems[n.Name] = fmt.Sprintf("image %q %s", n.Name, why)
			} else {
				problems[n.Name] = fmt.Sprintf("image %q is built on %q, which %s", n.Name, c.Name, why)
			}
			break
		}
	}
	return chain, problems, nil
}

// notReady says why a plan item needs a build, as the end of a sentence
// that starts with the image's name.
func notReady(it runtime.PlanItem) string {
	switch {
	case it.Action == runtime.Encode:
		return "is built, but not " + it.Reason
	case it.Node.Volatile:
		return "is rebuilt by every build (it " + it.Reason + ")"
	case it.Reason == "not built before":
		return "is not built"
	case strings.HasPrefix(it.Reason, "cache entry dropped"):
		return "is not built (" + it.Reason + ")"
	case it.Reason == "--no-cache":
		return "would be rebuilt (--no-cache)"
	}
	return "is stale against its definition (" + it.Reason + ")"
}

// tagBuilt tags the images of chain in the build's layout from their
// records, as strata build does for cached images. publishState must have
// found every one of them cached: the runtime then runs no step.
func tagBuilt(ctx context.Context, opts Options, chain []*dsl.Node) error {
	if err := opts.fill(); err != nil {
		return err
	}
	epoch, err := runtime.EpochFromEnv()
	if err != nil {
		return err
	}
	st, err := runtime.OpenStore(ctx, opts.Store, storage.OpenOptions{NoWait: opts.NoWait, Log: opts.Out})
	if err != nil {
		return err
	}
	defer st.Close()
	out, err := storage.OpenLayout(opts.Layout)
	if err != nil {
		return err
	}
	defer out.Close()
	results, err := runtime.Build(ctx, chain, runtime.Options{
		Store:           st,
		Layout:          out,
		Out:             io.Discard, // "cached" for every image says nothing here
		Jobs:            opts.Jobs,
		SourceDateEpoch: epoch,
		Annotations:     annotations(),
		Registry:        opts.Registry,
		NoSBOM:          opts.NoSBOM,
		CachedOnly:      true, // the store may have changed since publishState looked
	})
	var be *runtime.BuildError
	if errors.As(err, &be) {
		// Not returned as a BuildError: no summary named the failures.
		return fmt.Errorf("nothing published: %s", be.Error())
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Status != runtime.Cached {
			// The store changed since publishState looked (strata clean
			// or a build in between).
			return fmt.Errorf("nothing published: image %q was %s while publishing; run the command again", r.Name, r.Status)
		}
	}
	return nil
}
