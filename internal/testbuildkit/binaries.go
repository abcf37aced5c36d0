package testbuildkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the BuildKit release the tests run against. It matches the
// github.com/moby/buildkit requirement in go.mod so the daemon speaks the
// same API as the client code under test.
const Version = "v0.34.2"

// CacheDir keeps the built binaries between test runs, by version.
const CacheDir = "/var/cache/strata-test"

// Binaries returns the paths of buildkitd and buildctl, building them if the
// cache lacks them.
func Binaries(t testing.TB) (buildkitd, buildctl string) {
	t.Helper()
	// A fixed folder, not the user's cache: the CLI tests give every
	// strata their own XDG_CACHE_HOME, and the daemon runs as root only.
	dir := filepath.Join(CacheDir, "buildkit-"+Version)
	buildkitd = filepath.Join(dir, "buildkitd")
	buildctl = filepath.Join(dir, "buildctl")
	// Binaries only appear by rename, so seeing both means both are whole;
	// this keeps the common case free of locking.
	if executable(buildkitd) && executable(buildctl) {
		return buildkitd, buildctl
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testbuildkit: %v", err)
	}
	// go test ./... runs packages as separate processes in parallel; the
	// lock makes all but one of them wait for the build instead of each
	// spending minutes on their own.
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("testbuildkit: %v", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		// Without this line a waiting package looks hung for minutes.
		t.Logf("testbuildkit: waiting for another process building buildkit %s", Version)
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
			t.Fatalf("testbuildkit: lock %s: %v", lock.Name(), err)
		}
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if executable(buildkitd) && executable(buildctl) {
		return buildkitd, buildctl
	}

	t.Logf("testbuildkit: building buildkitd and buildctl %s into %s (takes minutes)", Version, dir)
	start := time.Now()
	// Next to the destination so the final rename stays on one file system.
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		t.Fatalf("testbuildkit: %v", err)
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		t.Fatalf("testbuildkit: building buildkit %s: %v", Version, err)
	}
	for _, name := range []string{"buildkitd", "buildctl"} {
		if err := os.Rename(filepath.Join(tmp, "bin", name), filepath.Join(dir, name)); err != nil {
			t.Fatalf("testbuildkit: %v", err)
		}
	}
	t.Logf("testbuildkit: built buildkit %s in %s", Version, time.Since(start).Round(time.Second))
	return buildkitd, buildctl
}

// build compiles both commands from a throw-away module because
// `go install …@version` refuses modules whose go.mod has exclude
// directives, as buildkit's does.
func build(tmp string) error {
	mod := filepath.Join(tmp, "mod")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return err
	}
	gomod := "module bkbuild\n\ngo 1.26\n\nrequire github.com/moby/buildkit " + Version + "\n"
	tools := "//go:build tools\n\npackage tools\n\nimport (\n" +
		"\t_ \"github.com/moby/buildkit/cmd/buildctl\"\n" +
		"\t_ \"github.com/moby/buildkit/cmd/buildkitd\"\n)\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mod, "tools.go"), []byte(tools), 0o644); err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	// The caller's GOFLAGS (e.g. -mod=vendor from a test run) and any
	// go.work would apply to the scratch module and break it.
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOFLAGS=") || strings.HasPrefix(kv, "GOWORK=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GOWORK=off")
	for _, args := range [][]string{
		{"mod", "tidy"},
		{"build", "-o", filepath.Join(tmp, "bin") + "/",
			"github.com/moby/buildkit/cmd/buildkitd", "github.com/moby/buildkit/cmd/buildctl"},
	} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = mod
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return &cmdError{args: append([]string{goBin}, args...), err: err, out: out}
		}
	}
	return nil
}

type cmdError struct {
	args []string
	err  error
	out  []byte
}

func (e *cmdError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + string(e.out)
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
