package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/strata-build/strata/runtime/sandbox"
)

// busyboxOnce builds one busybox rootfs per test binary, used read-only as
// the lower dir of most tests.
var (
	busyboxOnce sync.Once
	busyboxDir  string
	busyboxErr  error
)

// makeBusybox writes a rootfs of /bin/busybox and its applets to dir.
func makeBusybox(dir string) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(list)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
}

func busybox(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	busyboxOnce.Do(func() {
		busyboxDir, busyboxErr = os.MkdirTemp("", "strata-busybox-")
		if busyboxErr == nil {
			os.Chmod(busyboxDir, 0o755)
			busyboxErr = makeBusybox(busyboxDir)
		}
	})
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if busyboxDir != "" {
		os.RemoveAll(busyboxDir)
	}
	os.Exit(code)
}

// env is one sandbox's folders.
type env struct {
	dir, upper, work, rootfs string
	lowers                   []string
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// newEnv makes the folders of a sandbox over the busybox rootfs and checks,
// when the test ends, that nothing under them is still mounted.
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), lowers: []string{busybox(t)}}
	e.upper, e.work, e.rootfs = filepath.Join(e.dir, "upper"), filepath.Join(e.dir, "work"), filepath.Join(e.dir, "rootfs")
	for _, d := range []string{e.upper, e.work, e.rootfs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { noMounts(t, e.dir) })
	return e
}

// noMounts fails when dir or the busybox rootfs appears in our mountinfo.
func noMounts(t testing.TB, dir string) {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.Contains(line, dir) || (busyboxDir != "" && strings.Contains(line, busyboxDir)) {
			t.Errorf("left mounted: %s", line)
		}
	}
}

var testEnv = []string{"PATH=/bin", "HOME=/root", "STRATA_TEST=yes"}

func (e *env) spec(steps ...sandbox.Step) sandbox.Spec {
	return sandbox.Spec{
		Name: "testimg", Lowers: e.lowers, Upper: e.upper, Work: e.work, Rootfs: e.rootfs,
		Env: testEnv, Steps: steps,
	}
}

func script(s string) sandbox.Step { return sandbox.Step{Script: s, Where: "test.go:1"} }

// run runs spec, capturing the steps' output.
func run(t testing.TB, spec sandbox.Spec) (stdout, stderr string, res json.RawMessage, err error) {
	t.Helper()
	var o, e bytes.Buffer
	spec.Stdout, spec.Stderr = &o, &e
	res, err = sandbox.Run(context.Background(), spec)
	return o.String(), e.String(), res, err
}

// mustRun runs spec and fails the test on error.
func mustRun(t testing.TB, spec sandbox.Spec) (stdout, stderr string) {
	t.Helper()
	o, e, _, err := run(t, spec)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, o, e)
	}
	return o, e
}

// runHost runs a host command with stdin and returns its stdout.
func runHost(name, stdin string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	return string(out), err
}
