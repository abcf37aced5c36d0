package strata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
