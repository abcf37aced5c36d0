package strata

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
)

// FlagsEnv names the environment variable whose content Build parses as
// `strata build`'s flags and image names, so a mage target takes the
// CLI's settings without a line of code:
//
//	STRATA_FLAGS="--jobs 2 --no-cache hello" mage build
//
// Arguments are separated by white space; a value cannot contain any.
// --set and --params are refused: package-level definitions read their
// parameters when the program starts, from STRATA_PARAM_KEY=VALUE or
// STRATA_PARAMS in its environment (dsl.Params).
const FlagsEnv = "STRATA_FLAGS"

// Build builds images and their dependencies; it is what a mage target
// calls. It takes its options from STRATA_FLAGS (see FlagsEnv), the same
// flags as `strata build`; image names given there build only those of
// images (and what they need).
func Build(ctx context.Context, images ...*dsl.Image) error {
	opts, names, err := flagsFromEnv()
	if err != nil {
		return err
	}
	g, err := Evaluate(ctx, opts, images...)
	if err != nil {
		return err
	}
	_, err = BuildGraph(ctx, opts, g, names...)
	return err
}

// Publish builds what images need that is not built or is stale, then
// publishes them to to ("REGISTRY/PREFIX" or "oci:PATH"), as
// `strata publish --build` does; it is what a mage target calls. Like
// Build it takes strata build's flags from STRATA_FLAGS (--dry-run there
// shows what would be published and does nothing); image names given there
// publish only those of images. PublishWith takes the settings as a struct.
func Publish(ctx context.Context, to string, images ...*dsl.Image) error {
	opts, names, err := flagsFromEnv()
	if err != nil {
		return err
	}
	popts := PublishOptions{Options: opts, To: to, Build: true}
	if len(names) == 0 {
		return PublishWith(ctx, popts, images...)
	}
	if err := popts.Validate(); err != nil {
		return err
	}
	g, err := Evaluate(ctx, popts.Options, images...)
	if err != nil {
		return err
	}
	return PublishGraph(ctx, popts, g, names...)
}

// flagsFromEnv parses STRATA_FLAGS for Build and Publish, refusing what a
// program whose definitions have already initialised cannot honour.
func flagsFromEnv() (Options, []string, error) {
	fields := strings.Fields(os.Getenv(FlagsEnv))
	for _, f := range fields {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if strings.HasPrefix(f, "-") && (name == "set" || name == "params") {
			// Honouring them for ${{KEY}} placeholders only, while
			// dsl.Param calls kept their defaults, would build something
			// nobody asked for.
			return Options{}, nil, fmt.Errorf("%s=%q: --%s cannot reach the definitions here: their package-level dsl.Param calls ran when this program started; "+
				"set STRATA_PARAM_KEY=VALUE (or %s as a JSON object) in its environment instead", FlagsEnv, os.Getenv(FlagsEnv), name, dsl.ParamsEnv)
		}
	}
	opts, names, err := ParseBuildFlags(fields)
	if err != nil {
		return Options{}, nil, fmt.Errorf("%s=%q: %w", FlagsEnv, os.Getenv(FlagsEnv), err)
	}
	for _, n := range names {
		if cmdline.IsPackagePattern(n) {
			return Options{}, nil, fmt.Errorf("%s=%q: %s is a package pattern, which only the strata command compiles; a mage target builds the images it is given", FlagsEnv, os.Getenv(FlagsEnv), n)
		}
	}
	return opts, names, nil
}
