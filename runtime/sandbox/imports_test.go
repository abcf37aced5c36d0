package sandbox_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-build/strata/internal/imagepath"
	"github.com/strata-build/strata/runtime/sandbox"
)

// TestImportsSharingABaseName copies one file to two destinations and a
// different file of the same base name to a third: all three copies are
// in the layer, and imagepath.Imports/NAME shows the last import of that
// name, as stacker's /stacker/imports shows the last import copied there.
func TestImportsSharingABaseName(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	first := filepath.Join(e.dir, "tool.sh")
	os.WriteFile(first, []byte("echo first\n"), 0o644)
	last := filepath.Join(e.dir, "other", "tool.sh")
	os.MkdirAll(filepath.Dir(last), 0o755)
	os.WriteFile(last, []byte("echo last\n"), 0o644)
	out, _ := mustRun(t, e.spec(
		sandbox.Step{Copy: &sandbox.Copy{Source: first, Dest: "/a"}, Where: "i.go:1"},
		sandbox.Step{Copy: &sandbox.Copy{Source: first, Dest: "/b"}, Where: "i.go:2"},
		sandbox.Step{Copy: &sandbox.Copy{Source: last, Dest: "/c"}, Where: "i.go:3"},
		script(`sh /.strata/imports/tool.sh; ls /.strata/imports`),
	))
	if out != "last\ntool.sh\n" {
		t.Errorf("stdout %q, want the last import's tool.sh, alone under %s", out, imagepath.Imports)
	}
	assertUpper(t, e.upper, []string{"a", "b", "c"})
	for dest, want := range map[string]string{"a": "echo first\n", "b": "echo first\n", "c": "echo last\n"} {
		if got, err := os.ReadFile(filepath.Join(e.upper, dest)); err != nil || string(got) != want {
			t.Errorf("/%s = %q, %v; want %q", dest, got, err, want)
		}
	}
}
