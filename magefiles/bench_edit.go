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

// editImages is a two-image chain in a user's module: the top image's
// script carries a marker the benchmark edits, and a parameter the same
// change can come through instead.
const editImages = `package images

import "github.com/strata-build/strata/dsl"

// Base is busybox on scratch.
var Base = dsl.New("base").From(dsl.Scratch()).
	Import(dsl.File("/bin/busybox"), "/bin/busybox").
	Run("#!/bin/busybox sh\n/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /tmp\n/bin/busybox --install -s\n")

// Top is rebuilt by every edit.
var Top = dsl.New("top").From(Base).Run("echo " + dsl.Param("MSG", "m") + " > /msg # edit 0")
`

// editRun is one measured build: its wall time and the peak resident
// memory of the largest process it ran (strata, the go command, the
// compiler or the linker).
type editRun struct {
	wall time.Duration
	peak int64 // bytes
}

// benchEdit measures the edit-to-rebuild loop in a module made as a user
// makes it: an edit of the top image's script in the .go file (the driver
// is recompiled, then the top image rebuilt) against the same change
// through --set (no compile), interleaved, n times each.
func benchEdit(strata string, n int) error {
	tmp, err := os.MkdirTemp("", "strata-bench-edit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	mod := filepath.Join(tmp, "app")
	if err := os.MkdirAll(filepath.Join(mod, "images"), 0o755); err != nil {
		return err
	}
	src := filepath.Join(mod, "images", "images.go")
	if err := os.WriteFile(src, []byte(editImages), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{{"mod", "init", "example.com/app"},
		{"mod", "edit", "-replace=github.com/strata-build/strata=" + repo}, {"mod", "tidy"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	env := []string{"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache")}
	build := func(args ...string) (editRun, error) {
		cmd := exec.Command(strata, append([]string{"build"}, args...)...)
		cmd.Dir = filepath.Join(mod, "images")
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			return editRun{}, fmt.Errorf("strata build %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), "1 built, 1 cached") {
			return editRun{}, fmt.Errorf("strata build %s did not rebuild the top image alone:\n%s", strings.Join(args, " "), out)
		}
		// Linux reports the largest resident set among the process and
		// the descendants it waited for.
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return editRun{wall: wall, peak: ru.Maxrss * 1024}, nil
	}
	// Warm up: build the base, compile the driver once, and fill the Go
	// build cache with dsl (as any user's machine has it after one build).
	if _, err := build("--set", "MSG=warm"); err != nil && !strings.Contains(err.Error(), "did not rebuild") {
		return err
	}
	var edits, sets []editRun
	for i := 1; i <= n; i++ {
		text := strings.Replace(editImages, "# edit 0", fmt.Sprintf("# edit %d", i), 1)
		if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
			return err
		}
		r, err := build()
		if err != nil {
			return err
		}
		edits = append(edits, r)
		r, err = build("--set", fmt.Sprintf("MSG=set%d", i))
		if err != nil {
			return err
		}
		sets = append(sets, r)
	}
	fmt.Printf("\n| edit-to-rebuild, two-image chain, top image rebuilt (%d interleaved runs each; load %s) | min | median | max | peak memory, median |\n", n, procstat.LoadAverage())
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, row := range []struct {
		name string
		runs []editRun
	}{{"script edited in the `.go` file (driver recompiled)", edits}, {"same change through `--set` (no compile)", sets}} {
		walls := make([]time.Duration, len(row.runs))
		peaks := make([]int64, len(row.runs))
		for i, r := range row.runs {
			walls[i], peaks[i] = r.wall, r.peak
		}
		slices.Sort(walls)
		slices.Sort(peaks)
		fmt.Printf("| %s | %s | %.0f MiB |\n", row.name, spread(walls), float64(peaks[len(peaks)/2])/(1<<20))
	}
	return nil
}
