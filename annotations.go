package strata

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// annotationRevision is the OCI annotation of the source revision an
// image was built from.
const annotationRevision = "org.opencontainers.image.revision"

// gitRevision returns the commit checked out in the git work tree holding
// dir (the definitions folder), or "" when dir is not in one or git is not
// installed: the annotation is a courtesy, never a reason to fail a build.
func gitRevision(dir string) string {
	top, ok := gitTopLevel(dir)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// safe.directory: a user building in a clone another user owns (root's
	// checkout, built rootless) would otherwise get no revision, and a
	// different manifest digest than the owner's build. Trusting that
	// repository is no wider than what the build already does: it compiles
	// and runs the Go code in it. Only that repository is trusted, and only
	// when the definitions folder has the same owner.
	cmd := exec.CommandContext(ctx, "git", "-c", "safe.directory="+top, "rev-parse", "--verify", "-q", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if len(rev) != 40 && len(rev) != 64 {
		return ""
	}
	return rev
}

// gitTopLevel finds the work tree holding dir (the nearest folder with a
// .git) and reports whether dir and it belong to the same user.
func gitTopLevel(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	var own unix.Stat_t
	if unix.Stat(abs, &own) != nil {
		return "", false
	}
	for d := abs; ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(d, ".git"), &st) == nil {
			return d, st.Uid == own.Uid
		}
		if d == "/" {
			return "", false
		}
	}
}
