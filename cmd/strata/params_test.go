package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-build/strata/dsl"
)

func TestExportParams(t *testing.T) {
	f := filepath.Join(t.TempDir(), "params")
	os.WriteFile(f, []byte("A=file\nB=file\n"), 0o644)
	t.Setenv(dsl.ParamsEnv, `{"C":"env","A":"env"}`)
	args := []string{"--params", f, "--set=B=flag", "-set", "D=x=y", "hello", "--", "--set", "E=ignored"}
	if err := exportParams(args); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.Unmarshal([]byte(os.Getenv(dsl.ParamsEnv)), &got)
	want := map[string]string{"A": "file", "B": "flag", "C": "env", "D": "x=y"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("exported (-want +got):\n%s", d)
	}
	for _, bad := range [][]string{{"--set", "=v"}, {"--set", "1A=v"}, {"--set"}} {
		if err := exportParams(bad); err == nil {
			t.Errorf("exportParams(%q) accepted it", bad)
		}
	}
}

// The strata CLI reads --set and --params before it starts the driver;
// its errors spell flags as the driver's do.
func TestExportParamsSpellsFlagsWithTwoDashes(t *testing.T) {
	for _, args := range [][]string{{"hello", "--set"}, {"-params"}} {
		err := exportParams(args)
		if err == nil || singleDash.MatchString(err.Error()) || !strings.Contains(err.Error(), "--") {
			t.Errorf("exportParams(%q): %v", args, err)
		}
	}
}
