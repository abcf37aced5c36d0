// Package strata is the entry point for builds driven from Go: a magefile
// calls Build or Publish,
//
//	func Build(ctx context.Context) error { return strata.Build(ctx, images.App) }
//
// and a program that needs each stage on its own (the strata command in
// cmd/strata is one) evaluates images into a graph (Evaluate), then plans
// (Plan), builds (BuildGraph) or publishes (PublishGraph) it, taking
// `strata build`'s flags through BuildFlags.
package strata

import (
	"fmt"
	"io"
	"os"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage/registry"
)

// Version is the version written into manifests by a strata built from a
// checkout; a released module writes its module version (ModuleVersion).
var Version = "0.1.0-dev"

// Target is one exported definition of a definitions package, with its
// doc comment, as a compiled definitions driver hands it over
// (dsl.ReadDefinitions); its Image is what Evaluate takes.
type Target = dsl.Target

// Options configure a build. The zero value builds into .strata and oci
// at the root of the Go module holding the working directory, with tar+gzip
// layers.
type Options struct {
	// Store is the store folder (default: .strata at the root of the Go
	// module holding the working directory; see DefaultStore).
	Store string
	// Layout is the output OCI layout folder (default: oci at the module
	// root; see DefaultLayout).
	Layout string
	// NoCache rebuilds every selected image.
	NoCache bool
	// NoVerity leaves the dm-verity tree off squashfs and erofs layers
	// (and their root hash annotation), which carry one by default.
	NoVerity bool
	// NoSBOM leaves out the SBOM (SPDX 2.3 JSON: the dpkg, apk and Go
	// packages of the image) that is otherwise stored beside every image
	// in the layout as its OCI 1.1 referrer, and published with it.
	NoSBOM bool
	// SquashfsWriter picks the squashfs encoder: "native" (strata's own,
	// the default when empty) or "mksquashfs" (squashfs-tools).
	SquashfsWriter string
	// Backend, when set, runs the steps elsewhere: a BuildKit daemon's
	// address (unix://PATH, buildkit://HOST:PORT, docker-container://NAME,
	// kube-pod://POD), for a program that links runtime/buildkit (the
	// strata command does); "" or "local" runs them here.
	Backend string
	// NoWait fails at once when another build holds the store.
	NoWait bool
	// Jobs bounds how many images build at once (default: processors).
	Jobs int
	// FailFast stops all images when one fails.
	FailFast bool
	// LayerTypes are the layer encodings of images that do not choose
	// their own (dsl.Image.LayerTypes); default dsl.TarGzip.
	LayerTypes []dsl.LayerType
	// Out receives the build log (default os.Stderr).
	Out io.Writer
	// ShellOnFailure opens a shell in a failed step's container, as the
	// step left it, before the build reports the failure.
	ShellOnFailure bool
	// CacheFrom are registry repositories ("host/repo") whose build cache
	// stands in for running the steps of images the store does not have.
	CacheFrom []string
	// CacheTo is a registry repository that receives the layers and cache
	// record of every image built or found cached.
	CacheTo string
	// Registry holds credentials and transport settings of registry calls.
	Registry registry.Options
	// Progress is "auto" (a live display when Out is a terminal), "tty"
	// or "plain".
	Progress string
	// DryRun prints what the build would do with each image (for
	// PublishWith: what would be published where), in order,
	// and why, and does nothing else (see Plan).
	DryRun bool
	// Params are build parameters for ${{KEY}} placeholders, over those of
	// the environment (dsl.Params). Package-level dsl.Param calls only see
	// the environment's: the strata command exports --set and --params
	// there before the definitions initialise.
	Params map[string]string
	// AllowUnpinnedURLs lets URL imports and tarball URLs go without a
	// sha256: they are then downloaded at every build to learn their
	// digest.
	AllowUnpinnedURLs bool
}

func (o *Options) fill() error {
	if o.Store == "" {
		o.Store = DefaultStore()
	}
	if o.Layout == "" {
		o.Layout = DefaultLayout()
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	if len(o.LayerTypes) == 0 {
		o.LayerTypes = []dsl.LayerType{dsl.TarGzip}
	}
	// A Go caller's types are user input, as a flag's are: the names
	// --layer-type takes ("tar", "zstd") are accepted here too.
	types := make([]dsl.LayerType, len(o.LayerTypes))
	for i, t := range o.LayerTypes {
		var err error
		if types[i], err = layertype.Parse(string(t)); err != nil {
			return fmt.Errorf("Options.LayerTypes: %w", err)
		}
	}
	o.LayerTypes = types
	return nil
}
