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

// A layer type given through the Go API is parsed like the flag's: the
// flag's names are the types they name, others are refused.
func TestOptionsLayerTypesAreChecked(t *testing.T) {
	o := Options{LayerTypes: []dsl.LayerType{"tar+bzip2"}}
	if err := o.fill(); err == nil || !strings.Contains(err.Error(), "tar+bzip2") {
		t.Errorf("fill() of tar+bzip2 = %v, want an error naming the type", err)
	}
	o = Options{LayerTypes: []dsl.LayerType{"tar", "zstd"}}
	if err := o.fill(); err != nil || !slices.Equal(o.LayerTypes, []dsl.LayerType{dsl.TarGzip, dsl.TarZstd}) {
		t.Errorf("fill() of tar, zstd = %v, %v", o.LayerTypes, err)
	}
}

func TestSingleDashFlagsStillParse(t *testing.T) {
	opts, names, err := ParseBuildFlags([]string{"-jobs", "3", "hello", "-no-cache", "--store=s"})
	if err != nil || opts.Jobs != 3 || !opts.NoCache || opts.Store != "s" || !slices.Equal(names, []string{"hello"}) {
		t.Errorf("got %+v %v %v", opts, names, err)
	}
}
