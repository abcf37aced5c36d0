package strata

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
)

// Plan says what BuildGraph would do with the named images of g (all when
// none) and why, in the order it would start them, without running
// anything: what the store has, what would be encoded from a cached layer,
// and what would be rebuilt. It is what `strata graph` draws.
func Plan(ctx context.Context, opts Options, g *dsl.Graph, names ...string) ([]runtime.PlanItem, error) {
	nodes, err := g.Select(names...)
	if err != nil {
		return nil, err
	}
	return makePlan(ctx, opts, nodes)
}

// makePlan opens the store (when it exists: a plan never creates one)
// and asks the runtime what a build of nodes would do.
func makePlan(ctx context.Context, opts Options, nodes []*dsl.Node) ([]runtime.PlanItem, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	popts := runtime.PlanOptions{NoCache: opts.NoCache, NoVerity: opts.NoVerity}
	if _, err := os.Stat(opts.Store); err == nil {
		// The lock keeps a running build from changing records under us.
		st, err := runtime.OpenStore(ctx, opts.Store, storage.OpenOptions{NoWait: opts.NoWait, Log: opts.Out})
		if err != nil {
			return nil, err
		}
		defer st.Close()
		popts.Store = st
	}
	return runtime.Plan(nodes, popts)
}

// dryRun prints what strata build would do, in the order it starts the
// images, without running anything. A missing secret fails it as it would
// fail the build.
func dryRun(ctx context.Context, opts Options, g *dsl.Graph, names []string) error {
	nodes, err := g.Select(names...)
	if err != nil {
		return err
	}
	if _, err := runtime.ReadSecrets(nodes); err != nil {
		return err
	}
	plan, err := makePlan(ctx, opts, nodes)
	if err != nil {
		return err
	}
	w := opts.Out
	counts := map[runtime.Action]int{}
	for _, it := range plan {
		counts[it.Action]++
	}
	fmt.Fprintf(w, "dry run: %d to build, %d to encode, %d cached\n", counts[runtime.RunSteps], counts[runtime.Encode], counts[runtime.Reuse])
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for i, it := range plan {
		fmt.Fprintf(tw, "%d.\t%s\t%s\n", i+1, it.Node.Name, it.String())
	}
	return tw.Flush()
}
