package strata

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestReadGitHeadAgreesWithGit: the revision read from the files is the
// one git gives, for each form a checkout's HEAD takes.
func TestReadGitHeadAgreesWithGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	repo := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t",
			"-c", "safe.directory=*"}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	check := func(what, top string) {
		t.Helper()
		want := git(top, "rev-parse", "HEAD")
		got, ok := readGitHead(top)
		if !ok || got != want {
			t.Errorf("%s: readGitHead = %q, %v; git says %s", what, got, ok, want)
		}
	}
	git(repo, "init", "-q", "-b", "main")
	if _, ok := readGitHead(repo); ok {
		t.Error("an unborn branch was read rather than left to git")
	}
	git(repo, "commit", "-q", "--allow-empty", "-m", "one")
	check("loose branch", repo)
	git(repo, "commit", "-q", "--allow-empty", "-m", "two")
	git(repo, "pack-refs", "--all")
	check("packed branch", repo)
	git(repo, "checkout", "-q", "--detach", "HEAD~1")
	check("detached HEAD", repo)
	git(repo, "checkout", "-q", "main")
	git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
	git(repo, "symbolic-ref", "HEAD", "refs/heads/alias")
	check("symbolic ref to a packed branch", repo)
	git(repo, "symbolic-ref", "HEAD", "refs/heads/main")

	wt := filepath.Join(t.TempDir(), "wt")
	git(repo, "worktree", "add", "-q", "-b", "side", wt, "main~1")
	check("linked work tree", wt)
	git(wt, "commit", "-q", "--allow-empty", "-m", "three")
	check("linked work tree after a commit", wt)
	if got := gitRevision(wt); got != git(wt, "rev-parse", "HEAD") {
		t.Errorf("gitRevision of a linked work tree = %q", got)
	}
}
