package strata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/sbom"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/publish"
	"github.com/strata-build/strata/storage/registry"
)

// destination is where publish sends images: a registry prefix or a local
// OCI layout.
type destination struct {
	prefix string // registry: "host/prefix", images go to prefix/NAME:TAG
	layout string // oci:PATH: images are tagged NAME:TAG in PATH
}

func parseDestination(to string, ro registry.Options) (destination, error) {
	if p, ok := strings.CutPrefix(to, "oci:"); ok {
		if p == "" {
			return destination{}, cmdline.UsageError{Err: errors.New("--to oci:PATH needs a folder")}
		}
		return destination{layout: p}, nil
	}
	to = strings.TrimSuffix(strings.TrimPrefix(to, "docker://"), "/")
	if _, err := registry.ParseRepository(to, ro); err != nil {
		return destination{}, cmdline.UsageError{Err: fmt.Errorf("--to %s: %w", to, err)}
	}
	return destination{prefix: to}, nil
}

// pushItem is one manifest to publish: an image in one layer type under
// one tag.
type pushItem struct {
	node      *dsl.Node
	layoutTag string // the tag the build gave it in the output layout
	ref       string // where it goes: host/prefix/name:tag or name:tag in a layout
	tag       string
}

func (d destination) String() string {
	if d.layout != "" {
		return "oci:" + d.layout
	}
	return d.prefix
}

// plan lists what publishing nodes means: every layer type of every image
// under every tag, squashfs as TAG-squashfs as in the build's layout.
func (d destination) plan(nodes []*dsl.Node, tags []string) []pushItem {
	var items []pushItem
	for _, n := range nodes {
		imgTags := tags
		if len(imgTags) == 0 {
			imgTags = n.Image.Tags()
		}
		if len(imgTags) == 0 {
			imgTags = []string{"latest"}
		}
		for i, t := range n.LayerTypes {
			for _, tag := range imgTags {
				tag = runtime.TagName(tag, t, i == 0)
				ref := n.Name + ":" + tag
				if d.layout == "" {
					ref = d.prefix + "/" + ref
				}
				items = append(items, pushItem{node: n, layoutTag: runtime.TagName(n.Name, t, i == 0), ref: ref, tag: tag})
			}
		}
	}
	return items
}

// PublishOptions configure PublishWith and PublishGraph.
type PublishOptions struct {
	// Options are the build's: the store and layout the images were built
	// into, the registry settings, and for Build how to build.
	Options
	// To is where the images go: "REGISTRY/PREFIX" (as PREFIX/NAME:TAG)
	// or "oci:PATH" (a local OCI layout).
	To string
	// Tags to publish under (default: each image's own, else "latest").
	Tags []string
	// Build builds first the images that are not built or are stale;
	// without it, such images make Publish fail and nothing is built.
	Build bool
}

// Validate reports settings that cannot publish: no destination or a
// malformed one, NoCache without Build, an unknown layer type. PublishWith
// and PublishGraph check them too; a caller with slow work to do first
// (the strata command compiles definitions) calls it to fail at once.
func (o PublishOptions) Validate() error {
	_, err := o.check()
	return err
}

// check validates o, fills in the defaults of its Options and returns
// where it publishes.
func (o *PublishOptions) check() (destination, error) {
	if o.To == "" {
		return destination{}, errors.New("PublishOptions.To is empty: give REGISTRY/PREFIX or oci:PATH")
	}
	if o.NoCache && !o.Build {
		return destination{}, errors.New("PublishOptions: NoCache rebuilds images, which needs Build")
	}
	if err := o.fill(); err != nil {
		return destination{}, err
	}
	return parseDestination(o.To, o.Registry)
}

// PublishWith publishes images (never build-only ones) to opts.To, as
// strata publish does. The images it needs are evaluated as Build
// evaluates them, so a mage target can publish what it built.
func PublishWith(ctx context.Context, opts PublishOptions, images ...*dsl.Image) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	g, err := Evaluate(ctx, opts.Options, images...)
	if err != nil {
		return err
	}
	names := make([]string, len(images))
	for i, img := range images {
		names[i] = img.Name()
	}
	return PublishGraph(ctx, opts, g, names...)
}

// PublishGraph publishes the named images of g (all when none; never
// build-only ones) as `strata publish` does: without popts.Build it
// publishes only what the store holds as the definitions are now and
// refuses the rest, naming why; with it, it builds them first. Each image
// goes under each tag and in each of its layer types; a summary table
// goes to stdout. popts.DryRun prints that plan and publishes nothing.
func PublishGraph(ctx context.Context, popts PublishOptions, g *dsl.Graph, names ...string) error {
	dest, err := popts.check()
	if err != nil {
		return err
	}
	opts := popts.Options
	nodes, err := publishable(g, names)
	if err != nil {
		return err
	}
	items := dest.plan(nodes, popts.Tags)
	chain, problems, err := publishState(ctx, opts, g, nodes)
	if err != nil {
		return err
	}
	if popts.DryRun {
		return printPlan(os.Stdout, items, problems, popts.Build)
	}
	if popts.Build {
		pubNames := make([]string, len(nodes))
		for i, n := range nodes {
			pubNames[i] = n.Name
		}
		if _, err := BuildGraph(ctx, opts, g, pubNames...); err != nil {
			return err
		}
	} else {
		if len(problems) > 0 {
			lines := make([]string, 0, len(problems))
			for _, n := range nodes {
				if p, ok := problems[n.Name]; ok {
					lines = append(lines, p)
				}
			}
			return fmt.Errorf("nothing published:\n  %s\nrun strata build first, or strata publish --build", strings.Join(lines, "\n  "))
		}
		if err := tagBuilt(ctx, opts, chain); err != nil {
			return err
		}
	}
	return pushAll(ctx, opts, dest, items)
}

// publishable selects the named images (all when none), leaving out
// build-only ones, which are never published.
func publishable(g *dsl.Graph, names []string) ([]*dsl.Node, error) {
	for _, name := range names {
		if n := g.Node(name); n != nil && n.Image.IsBuildOnly() {
			return nil, cmdline.UsageError{Err: fmt.Errorf("image %q is build-only: it is never published", name)}
		}
	}
	sel, err := g.Select(names...)
	if err != nil {
		return nil, cmdline.UsageError{Err: err}
	}
	var out []*dsl.Node
	for _, n := range sel {
		if !n.Image.IsBuildOnly() && (len(names) == 0 || slices.Contains(names, n.Name)) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, cmdline.UsageError{Err: errors.New("no image to publish: every selected image is build-only")}
	}
	return out, nil
}

func printPlan(w io.Writer, items []pushItem, problems map[string]string, build bool) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tFROM LAYOUT TAG\tTO\tSTATE")
	for _, it := range items {
		state := "built"
		if p, ok := problems[it.node.Name]; ok {
			state = p
			if build {
				state += "; --build builds it"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.node.Name, it.layoutTag, it.ref, state)
	}
	tw.Flush()
	fmt.Fprintln(w, "dry run: nothing was published")
	return nil
}

// pushAll sends every item, in build order so that an image's base is in
// the registry before it and its layers can be mounted from there.
func pushAll(ctx context.Context, opts Options, dest destination, items []pushItem) error {
	st, err := runtime.OpenStore(ctx, opts.Store, storage.OpenOptions{NoWait: opts.NoWait, Log: opts.Out})
	if err != nil {
		return err
	}
	defer st.Close()
	built, err := storage.OpenLayout(opts.Layout)
	if err != nil {
		return err
	}
	defer built.Close()
	var target *storage.Layout
	if dest.layout != "" {
		if target, err = storage.OpenLayout(dest.layout); err != nil {
			return err
		}
		defer target.Close()
	}
	live := opts.display()
	out := opts.Out
	if live != nil {
		out = live
		for _, it := range items {
			live.Images(it.ref)
		}
	}
	mounts, err := mountSources(st, dest, opts.Registry, items)
	if err != nil {
		return err
	}
	var rows [][4]string
	var failure error
	for i, it := range items {
		desc, err := built.Resolve(ctx, it.layoutTag)
		if err != nil {
			failure = fmt.Errorf("image %q: %w", it.node.Name, err)
			break
		}
		live.State(it.ref, "pushing")
		sent := live.Pushed(it.ref)
		if sent == nil {
			sent = new(atomic.Int64)
		}
		if target != nil {
			err = target.Tag(ctx, st, it.ref, desc)
		} else {
			err = pushOne(ctx, st, desc, it.ref, opts.Registry, mounts, sent)
		}
		var sboms []digest.Digest
		if err == nil && !opts.NoSBOM {
			sboms, err = pushSBOMs(ctx, st, built, target, desc, it.ref, opts.Registry, sent)
		}
		if err != nil {
			live.State(it.ref, "failed")
			failure = fmt.Errorf("publish image %q to %s: %w\n%d of %d published; running the same command again sends only what is missing", it.node.Name, it.ref, err, i, len(items))
			break
		}
		live.State(it.ref, "pushed")
		fmt.Fprintf(out, "%s: published %s %s (%s uploaded)\n", it.node.Name, it.ref, desc.Digest, bytesize.Format(sent.Load()))
		for _, d := range sboms {
			fmt.Fprintf(out, "%s: published its SBOM %s as a referrer of %s\n", it.node.Name, d, desc.Digest)
		}
		rows = append(rows, [4]string{it.node.Name, it.ref, desc.Digest.String(), bytesize.Format(sent.Load())})
	}
	live.Close()
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tPUBLISHED AS\tDIGEST\tUPLOADED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
		}
		tw.Flush()
	}
	return failure
}

func pushOne(ctx context.Context, st *storage.Store, desc v1.Descriptor, ref string, ro registry.Options, mounts map[digest.Digest]name.Repository, sent *atomic.Int64) error {
	r, err := registry.ParseReference(ref, ro)
	if err != nil {
		return err
	}
	img, err := publish.StoreImage(st, desc, sent)
	if err != nil {
		return err
	}
	return publish.Push(ctx, img, r, publish.Options{Registry: ro, MountFrom: mounts})
}

// pushSBOMs sends the SBOMs the build's layout holds of the image desc,
// just published as ref, as its referrers, from the store: to the
// registry by digest, or into the target layout.
func pushSBOMs(ctx context.Context, st *storage.Store, built, target *storage.Layout, desc v1.Descriptor, ref string, ro registry.Options, sent *atomic.Int64) ([]digest.Digest, error) {
	refs, err := built.Referrers(ctx, desc.Digest, sbom.MediaType)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	var repo name.Repository
	if target == nil {
		r, err := registry.ParseReference(ref, ro)
		if err != nil {
			return nil, err
		}
		repo = r.Context()
	}
	var pushed []digest.Digest
	for _, d := range refs {
		if target != nil {
			err = target.AddReferrer(ctx, st, d, desc.Digest)
		} else {
			// By digest: an artifact has no tag of its own. A registry
			// without the referrers API gets it in the subject's
			// fallback tag too (go-containerregistry writes it).
			img, serr := publish.StoreImage(st, d, sent)
			if err = serr; err == nil {
				err = publish.Push(ctx, img, repo.Digest(d.Digest.String()), publish.Options{Registry: ro})
			}
		}
		if err != nil {
			return pushed, fmt.Errorf("SBOM %s: %w", d.Digest, err)
		}
		pushed = append(pushed, d.Digest)
	}
	return pushed, nil
}

// mountSources maps each layer of a published image to the repository it
// is published to, so that images built on it ask the registry to mount
// the layer from there instead of uploading it again.
func mountSources(st *storage.Store, dest destination, ro registry.Options, items []pushItem) (map[digest.Digest]name.Repository, error) {
	if dest.layout != "" {
		return nil, nil
	}
	mounts := map[digest.Digest]name.Repository{}
	for _, it := range items {
		rec, _, err := st.Lookup(it.node.Key)
		if err != nil || rec == nil {
			continue // pushing it reports the problem
		}
		repo, err := registry.ParseRepository(dest.prefix+"/"+it.node.Name, ro)
		if err != nil {
			return nil, cmdline.UsageError{Err: fmt.Errorf("--to %s: image %q: %w", dest.prefix, it.node.Name, err)}
		}
		for _, b := range rec.Layers {
			if _, ok := mounts[b.Descriptor.Digest]; !ok {
				mounts[b.Descriptor.Digest] = repo
			}
		}
	}
	return mounts, nil
}
