package strata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-build/strata/dsl"
)

func TestReadParamsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "params")
	os.WriteFile(f, []byte("# comment\n\nA=1\n  B = spaced=value \nURL=http://x/?a=b\n"), 0o644)
	got, err := ReadParamsFile(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": " spaced=value ", "URL": "http://x/?a=b"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("params (-want +got):\n%s", d)
	}
	os.WriteFile(f, []byte("A=1\nnot a parameter\n"), 0o644)
	if _, err := ReadParamsFile(f); err == nil || !strings.Contains(err.Error(), f+":2") {
		t.Errorf("bad line: %v, want an error naming %s:2", err, f)
	}
}

func TestExportParams(t *testing.T) {
	f := filepath.Join(t.TempDir(), "params")
	os.WriteFile(f, []byte("A=file\nB=file\n"), 0o644)
	t.Setenv(dsl.ParamsEnv, `{"C":"env","A":"env"}`)
	args := []string{"--params", f, "--set=B=flag", "-set", "D=x=y", "hello", "--", "--set", "E=ignored"}
	if err := ExportParams(args); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	json.Unmarshal([]byte(os.Getenv(dsl.ParamsEnv)), &got)
	want := map[string]string{"A": "file", "B": "flag", "C": "env", "D": "x=y"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("exported (-want +got):\n%s", d)
	}
	for _, bad := range [][]string{{"--set", "=v"}, {"--set", "1A=v"}, {"--set"}} {
		if err := ExportParams(bad); err == nil {
			t.Errorf("ExportParams(%q) accepted it", bad)
		}
	}
}
