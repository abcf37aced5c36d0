package strata

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestGitRevisionOfAnotherUsersClone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "safe.directory=*"}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return string(out)
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "x")
	head := git("rev-parse", "HEAD")[:40]
	defs := filepath.Join(repo, "defs")
	os.Mkdir(defs, 0o755)

	// Someone else's clone, definitions and all: the revision is read
	// (git alone would refuse: dubious ownership).
	if err := exec.Command("chown", "-R", "65534:65534", repo).Run(); err != nil {
		t.Fatal(err)
	}
	if got := gitRevision(defs); got != head {
		t.Errorf("revision of a clone another user owns = %q, want %s", got, head)
	}
	// A repository above definitions of another owner is not theirs.
	os.Chown(defs, 0, 0)
	if got := gitRevision(defs); got != "" {
		t.Errorf("revision from a repository owned by someone else than the definitions = %q", got)
	}
}
