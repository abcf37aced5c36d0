package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/internal/procstat"
	"github.com/strata-build/strata/internal/testbuildkit"
)

// TestPrintBackendBench prints the W1 workload (cmd/strata/testdata/bench/w1:
// 20,000 small files and 100 MiB on busybox, then three folders deleted)
// built with the local backend and through a local buildkitd, in
// interleaved rounds:
//
//   - cold: a store holding only the busybox base, and for BuildKit a
//     daemon whose cache was pruned (buildctl prune --all);
//   - cold store, warm daemon: the same store, the daemon keeping the
//     previous build's cache (a second machine on a shared builder);
//   - cached: the same build again on the store of the first; strata's
//     keys say nothing changed, so no step and no solve run.
//
// As root: STRATA_BENCH=1 go test -v -timeout 1h -run '^TestPrintBackendBench$' ./cmd/strata/
// STRATA_BENCH_REPS rounds (default 5).
func TestPrintBackendBench(t *testing.T) {
	if os.Getenv("STRATA_BENCH") == "" {
		t.Skip("set STRATA_BENCH=1")
	}
	needRoot(t)
	reps := 5
	if v := os.Getenv("STRATA_BENCH_REPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STRATA_BENCH_REPS=%q", v)
		}
		reps = n
	}
	bk := testbuildkit.Start(t, testbuildkit.Options{})
	dir := repo(t, "cmd/strata/testdata/bench/w1")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(os.TempDir(), "strata-backend-bench-cache"))
	tmp := t.TempDir()
	seed := filepath.Join(tmp, "seed")
	mustStrata(t, dir, "build", "--store", seed, "--layout", filepath.Join(tmp, "seed-oci"), "busybox")
	loads := []string{procstat.LoadAverage()}

	timed := func(store string, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		out, code := strata(t, dir, append([]string{"build", "--store", store, "--layout", store + "-oci"}, args...)...)
		d := time.Since(start)
		if code != 0 {
			t.Fatalf("strata build %v:\n%s", args, out)
		}
		return d
	}
	fresh := func(name string) string {
		t.Helper()
		p := filepath.Join(tmp, name)
		if out, err := exec.Command("cp", "-a", seed, p).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		return p
	}
	prune := func() {
		t.Helper()
		if out, err := exec.Command(bk.Buildctl, "--addr", bk.Addr, "prune", "--all").CombinedOutput(); err != nil {
			t.Fatalf("buildctl prune: %v\n%s", err, out)
		}
	}
	rows := map[string][]time.Duration{}
	order := []string{"local", "buildkit"}
	for round := 1; round <= reps; round++ {
		t.Logf("round %d of %d (load %s)", round, reps, procstat.LoadAverage())
		for _, backend := range order {
			args := []string{"w1-prune"}
			if backend == "buildkit" {
				args = append(args, "--backend", bk.Addr)
				prune()
			}
			store := fresh(fmt.Sprintf("%s-%d", backend, round))
			rows[backend+" cold"] = append(rows[backend+" cold"], timed(store, args...))
			rows[backend+" cached"] = append(rows[backend+" cached"], timed(store, args...))
			if backend == "buildkit" {
				again := fresh(fmt.Sprintf("%s-%d-again", backend, round))
				rows["buildkit cold store, warm daemon"] = append(rows["buildkit cold store, warm daemon"], timed(again, args...))
				os.RemoveAll(again)
			}
			os.RemoveAll(store)
			os.RemoveAll(store + "-oci")
		}
		slices.Reverse(order) // neither always goes first
	}
	loads = append(loads, procstat.LoadAverage())
	var b strings.Builder
	fmt.Fprintf(&b, "\nW1 through the local backend and a local buildkitd (%s): %d interleaved rounds, load average %s at start, %s at end\n\n", testbuildkit.Version, reps, loads[0], loads[1])
	fmt.Fprintf(&b, "| build | median | min–max | × local |\n|---|---|---|---|\n")
	for _, row := range []struct{ name, base string }{
		{"local cold", ""}, {"buildkit cold", "local cold"}, {"buildkit cold store, warm daemon", "local cold"},
		{"local cached", ""}, {"buildkit cached", "local cached"},
	} {
		ds := rows[row.name]
		slices.Sort(ds)
		ratio := ""
		if row.base != "" {
			ratio = fmt.Sprintf("%.2f×", median(ds).Seconds()/median(rows[row.base]).Seconds())
		}
		fmt.Fprintf(&b, "| %s | %.3f s | %.3f–%.3f s | %s |\n", row.name, median(ds).Seconds(), ds[0].Seconds(), ds[len(ds)-1].Seconds(), ratio)
	}
	fmt.Print(b.String())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
