package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/internal/ignore"
	"github.com/strata-build/strata/runtime/sandbox"
)

// TestCopyExclude copies a folder with patterns: what they exclude, .git,
// a store and an OCI layout inside it stay out of the image, and out of
// the steps' view of the import.
func TestCopyExclude(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the masks of the view are made
	src := filepath.Join(e.dir, "src")
	for name, content := range map[string]string{
		"main.txt":                   "main",
		"app.log":                    "log",
		"keep.log":                   "kept",
		"sub/trace.log":              "log",
		"node_modules/x/index.js":    "x",
		".git/HEAD":                  "ref",
		"sub/.git":                   "gitdir: ..",
		".strata/" + ignore.StoreTag: ignore.StoreTagText,
		".strata/layers/x":           "x",
		"oci/oci-layout":             "{}",
		"oci/index.json":             "{}",
	} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	os.Chmod(filepath.Join(src, "sub"), 0o750)
	out, _ := mustRun(t, e.spec(
		script("cd /.strata/imports/src && find . | sort && stat -c %a sub && cat main.txt"),
		sandbox.Step{
			Copy:  &sandbox.Copy{Source: src, Dest: "/srv", Exclude: []string{"*.log", "!keep.log", "node_modules/"}},
			Where: "c.go:1",
		}))
	assertUpper(t, e.upper, []string{"srv", "srv/keep.log", "srv/main.txt", "srv/sub"})
	if want := ".\n./keep.log\n./main.txt\n./sub\n750\nmain"; out != want {
		t.Errorf("the steps see the import as\n%s\nwant\n%s", out, want)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}

	_, err := sandbox.Run(context.Background(), e.spec(sandbox.Step{
		Copy:  &sandbox.Copy{Source: src, Dest: "/srv", Exclude: []string{"[a-"}},
		Where: "c.go:2",
	}))
	if err == nil || !strings.Contains(err.Error(), "c.go:2") || !strings.Contains(err.Error(), `"[a-"`) {
		t.Errorf("malformed pattern: err = %v", err)
	}
}
