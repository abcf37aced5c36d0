package strata

import (
	"context"
	"os/exec"
	"strings"
	"time"
)

// annotationRevision is the OCI annotation of the source revision an
// image was built from.
const annotationRevision = "org.opencontainers.image.revision"

// gitRevision returns the commit checked out in the git work tree holding
// dir (the definitions folder), or "" when dir is not in one or git is not
// installed: the annotation is a courtesy, never a reason to fail a build.
func gitRevision(dir string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// safe.directory: a user building in a clone another user owns (root's
	// checkout, built rootless) would otherwise get no revision, and a
	// different manifest digest than the owner's build. Trusting that
	// repository's config is no wider than what the build already does:
	// it compiles and runs the Go code in it.
	cmd := exec.CommandContext(ctx, "git", "-c", "safe.directory=*", "rev-parse", "--verify", "-q", "HEAD")
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
