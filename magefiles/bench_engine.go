//go:build mage

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/strata-build/strata/internal/procstat"
)

// benchEngine prints the build engine's table (as root): a fully cached
// build of ten images through `strata build` (driver start included) and
// through a mage target, ten independent images of one CPU-second each
// built with --jobs 1 and --jobs 2, and the edit-to-rebuild loop. It
// expects bin/strata (Build).
func benchEngine() error {
	strata, err := filepath.Abs("bin/strata")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "strata-bench-engine-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mage := filepath.Join(tmp, "mage")
	if out, err := exec.Command("go", "build", "-o", mage, "github.com/magefile/mage").CombinedOutput(); err != nil {
		return fmt.Errorf("build mage: %v\n%s", err, out)
	}
	flags := []string{"--store", filepath.Join(tmp, "store"), "--layout", filepath.Join(tmp, "oci")}
	ten, cpu := "cmd/strata/testdata/engine/ten", "cmd/strata/testdata/engine/cpu"

	viaCLI := func(dir string, extra ...string) (time.Duration, error) {
		return timed(dir, nil, strata, append(append([]string{"build"}, flags...), extra...)...)
	}
	magefile, err := filepath.Abs(filepath.Join(ten, "mage"))
	if err != nil {
		return err
	}
	viaMage := func() (time.Duration, error) {
		env := []string{"MAGEFILE_CACHE=" + filepath.Join(tmp, "magecache"), "STRATA_FLAGS=" + strings.Join(flags, " ")}
		return timed(".", env, mage, "-d", magefile, "-w", magefile, "build")
	}
	// The first runs build the images, compile the driver and the mage
	// binary: what follows is the cached path alone.
	if _, err := viaCLI(ten); err != nil {
		return err
	}
	if _, err := viaMage(); err != nil {
		return err
	}
	cli, err := repeat(10, func() (time.Duration, error) { return viaCLI(ten) })
	if err != nil {
		return err
	}
	mg, err := repeat(10, viaMage)
	if err != nil {
		return err
	}

	if _, err := viaCLI(cpu); err != nil { // builds busybox and the driver
		return err
	}
	jobs1, err := viaCLI(cpu, "--no-cache", "--jobs", "1")
	if err != nil {
		return err
	}
	jobs2, err := viaCLI(cpu, "--no-cache", "--jobs", "2")
	if err != nil {
		return err
	}

	fmt.Println("\n| build engine | min | median | max |")
	fmt.Println("|---|---:|---:|---:|")
	fmt.Printf("| fully cached, ten images, `strata build` (driver included) | %s |\n", spread(cli))
	fmt.Printf("| fully cached, ten images, `mage build` (STRATA_FLAGS) | %s |\n", spread(mg))
	fmt.Println("\n| ten independent images, 1 CPU-second each (one run, --no-cache) | wall time | speed-up |")
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| `--jobs 1` | %.2f s | 1.00 |\n", jobs1.Seconds())
	fmt.Printf("| `--jobs 2` | %.2f s | %.2f |\n", jobs2.Seconds(), jobs1.Seconds()/jobs2.Seconds())
	return benchEdit(strata, 7) // magefiles/bench_edit.go
}

// timed runs name in dir with env added and returns how long it took.
func timed(dir string, env []string, name string, args ...string) (time.Duration, error) {
	r, err := measured(dir, env, name, args...)
	return r.wall, err
}

// benchRun is one measured command: its wall time, its output, and two
// peaks of memory. maxRSS is what wait4 reports, the largest resident set
// of any one process of the tree; sumRSS is the largest sum of the
// resident sets of the command and all its descendants seen by sampling,
// which counts helpers that run beside it (mksquashfs beside strata).
type benchRun struct {
	wall           time.Duration
	maxRSS, sumRSS int64 // bytes
	out            string
}

// measured runs name in dir with env added, sampling its process tree's
// memory until it exits.
func measured(dir string, env []string, name string, args ...string) (benchRun, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return benchRun{}, err
	}
	stop := make(chan struct{})
	peak := make(chan int64)
	go func() { peak <- procstat.PeakTreeRSS(cmd.Process.Pid, 10*time.Millisecond, stop) }()
	err := cmd.Wait()
	wall := time.Since(start)
	close(stop)
	r := benchRun{wall: wall, sumRSS: <-peak, out: out.String()}
	if err != nil {
		return r, fmt.Errorf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, r.out)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss * 1024 // Linux counts KiB
	}
	return r, nil
}

func repeat(n int, f func() (time.Duration, error)) ([]time.Duration, error) {
	var out []time.Duration
	for range n {
		d, err := f()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}

func spread(d []time.Duration) string {
	return fmt.Sprintf("%.3f s | %.3f s | %.3f s", d[0].Seconds(), d[len(d)/2].Seconds(), d[len(d)-1].Seconds())
}
