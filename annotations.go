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
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "-q", "HEAD")
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
