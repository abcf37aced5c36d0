package strata

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/timings"
)

// annotationRevision is the OCI annotation of the source revision an
// image was built from.
const annotationRevision = "org.opencontainers.image.revision"

// gitRevision returns the commit checked out in the git work tree holding
// dir (the definitions folder), or "" when dir is not in one or git is not
// installed: the annotation is a courtesy, never a reason to fail a build.
func gitRevision(dir string) string {
	defer timings.Phase("build: git revision")()
	top, ok := gitTopLevel(dir)
	if !ok {
		return ""
	}
	if rev, ok := readGitHead(top); ok {
		return rev
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

// readGitHead reads the commit checked out in the work tree top the way
// git does, from HEAD and the ref files, which costs a few reads where
// running git costs a process (a good part of a cached build). ok is false
// for anything it does not handle, and git is asked then: an unborn
// branch, the reftable format, or the GIT_* variables that move the
// repository or its refs.
func readGitHead(top string) (rev string, ok bool) {
	for _, v := range []string{"GIT_DIR", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_WORK_TREE"} {
		if _, set := os.LookupEnv(v); set {
			return "", false
		}
	}
	gitDir := filepath.Join(top, ".git")
	if fi, err := os.Stat(gitDir); err != nil {
		return "", false
	} else if !fi.IsDir() {
		// A linked work tree or a submodule: .git names the real folder.
		data, err := os.ReadFile(gitDir)
		if err != nil {
			return "", false
		}
		d, found := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir: ")
		if !found {
			return "", false
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(top, d)
		}
		gitDir = d
	}
	// Branches live in the common folder; a linked work tree's own
	// folder holds its HEAD.
	common := gitDir
	if data, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(data))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = c
	}
	if _, err := os.Stat(filepath.Join(common, "reftable")); err == nil {
		return "", false
	}
	ref := "HEAD"
	// A symbolic ref may name another; git gives up after five.
	for range 5 {
		dir := common
		if ref == "HEAD" || strings.HasPrefix(ref, "refs/worktree/") || strings.HasPrefix(ref, "refs/bisect/") ||
			strings.HasPrefix(ref, "refs/rewritten/") {
			dir = gitDir
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ref)))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) || ref == "HEAD" {
				return "", false
			}
			return packedRef(common, ref)
		}
		content := strings.TrimSpace(string(data))
		if target, symbolic := strings.CutPrefix(content, "ref: "); symbolic {
			ref = target
			continue
		}
		if !isObjectName(content) {
			return "", false
		}
		return content, true
	}
	return "", false
}

// packedRef looks ref up in the packed-refs file, where git moves refs
// that have no file of their own.
func packedRef(common, ref string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(common, "packed-refs"))
	if err != nil {
		return "", false
	}
	for line := range strings.Lines(string(data)) {
		name, found := strings.CutSuffix(strings.TrimRight(line, "\r\n"), " "+ref)
		if found && isObjectName(name) {
			return name, true
		}
	}
	return "", false
}

// isObjectName reports whether s is a full SHA-1 or SHA-256 object name
// as git writes it.
func isObjectName(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
