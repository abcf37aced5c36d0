package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/runtime/sandbox"
)

// benchEnv is a root sandbox, or a rootless one inside TestRootless's inner
// run.
func benchEnv(tb testing.TB) (e *env, rootless bool) {
	if dir := os.Getenv(rootlessDirEV); dir != "" {
		sub := filepath.Join(dir, "bench-"+strings.ReplaceAll(tb.Name(), "/", "-"))
		os.Mkdir(sub, 0o755)
		e := rootlessEnv(tb, sub)
		return e, true
	}
	requireRoot(tb)
	return newEnv(tb), false
}

func benchSpec(tb testing.TB, e *env, rootless bool) sandbox.Spec {
	spec := e.spec(script("true"))
	if rootless {
		spec.UIDMap, spec.GIDMap = rootlessMaps(tb)
	}
	return spec
}

// BenchmarkStepTrue measures a whole Run of one `true` step.
func BenchmarkStepTrue(b *testing.B) {
	e, rootless := benchEnv(b)
	spec := benchSpec(b, e, rootless)
	for b.Loop() {
		if _, err := sandbox.Run(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCompareUnshare prints how a Run of one `true` step compares with
// unshare(1) mounting the same overlay and chrooting into it, and with the
// step's process alone. STRATA_BENCH=1 enables it; TestRootless runs the
// rootless row.
func TestCompareUnshare(t *testing.T) {
	if os.Getenv("STRATA_BENCH") == "" {
		t.Skip("set STRATA_BENCH=1")
	}
	e, rootless := benchEnv(t)
	spec := benchSpec(t, e, rootless)
	const n = 30
	timeIt := func(f func() error) time.Duration {
		if err := f(); err != nil { // warm up
			t.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start) / n
	}
	ours := timeIt(func() error {
		_, err := sandbox.Run(context.Background(), spec)
		return err
	})
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(e.lowers, ":"), e.upper, e.work)
	args := []string{"--mount", "--pid", "--fork"}
	if rootless {
		args = append([]string{"--user", "--map-root-user"}, args...)
		opts += ",userxattr"
	}
	args = append(args, "/bin/sh", "-c", fmt.Sprintf("mount -t overlay overlay -o %s %s && exec chroot %s /bin/sh -c true", opts, e.rootfs, e.rootfs))
	unshare := timeIt(func() error {
		out, err := exec.Command("unshare", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("unshare: %v: %s", err, out)
		}
		return nil
	})
	alone := timeIt(func() error { return exec.Command(filepath.Join(e.lowers[0], "bin/sh"), "-c", "true").Run() })
	mode := "root"
	if rootless {
		mode = "rootless"
	}
	t.Logf("\n%-9s %10s %10s %10s %16s\n%-9s %10v %10v %10v %16v", "mode", "ours", "unshare", "process", "ours - process",
		mode, ours.Round(10*time.Microsecond), unshare.Round(10*time.Microsecond), alone.Round(10*time.Microsecond), (ours - alone).Round(10*time.Microsecond))
}
