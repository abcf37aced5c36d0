package strata

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/strata-build/strata/dsl"
)

// Flags that a mage target cannot honour are refused, never dropped.
func TestBuildRefusesFlagsItCannotHonour(t *testing.T) {
	img := dsl.New("x").From(dsl.Scratch()).Run("true")
	for flags, want := range map[string]string{
		"--set K=V":              "STRATA_PARAM_KEY=VALUE",
		"--params p.json":        "STRATA_PARAM_KEY=VALUE",
		"./images":               "package pattern",
		"--layer-type tar+bzip2": "tar+bzip2",
		"--no-such-flag":         "no-such-flag",
	} {
		t.Setenv(FlagsEnv, flags)
		t.Setenv("XDG_CACHE_HOME", t.TempDir())
		err := Build(context.Background(), img)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), FlagsEnv) {
			t.Errorf("STRATA_FLAGS=%q: err = %v, want one naming %s and %q", flags, err, FlagsEnv, want)
		}
	}
}

// A layer type given through the Go API is checked like the flag's. It
// is a typed value, not a name to parse: a flag's alias converted into
// one is not a layer type.
func TestOptionsLayerTypesAreChecked(t *testing.T) {
	for _, bad := range []dsl.LayerType{"tar+bzip2", "tar"} {
		o := Options{LayerTypes: []dsl.LayerType{bad}}
		if err := o.fill(); err == nil || !strings.Contains(err.Error(), string(bad)) {
			t.Errorf("fill() of %q = %v, want an error naming the type", bad, err)
		}
	}
}

func TestSingleDashFlagsStillParse(t *testing.T) {
	opts, names, err := ParseBuildFlags([]string{"-jobs", "3", "hello", "-no-cache", "--store=s"})
	if err != nil || opts.Jobs != 3 || !opts.NoCache || opts.Store != "s" || !slices.Equal(names, []string{"hello"}) {
		t.Errorf("got %+v %v %v", opts, names, err)
	}
}
