//go:build mage

package main

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/magefile/mage/mg"
)

// Bench prints strata's benchmark tables (as root, on an idle machine):
// layer encoders beside tar|zstd, tar|pigz and mksquashfs on the same
// tree, and on W1- and W2-like trees with CPU and peak memory per
// encoder (strata's native squashfs writer and erofs beside strata's
// tar+zstd and mksquashfs); unpacking a base beside tar -xf; a one-file commit on 1 and 10 GiB bases beside umoci repack; peak
// memory of committing a 2 GiB layer; the build engine (fully cached
// builds of ten images, parallel builds); the sandbox's step overhead;
// the W1/W2 workloads against their ceilings and BuildKit's figures
// (BenchWorkloads, which STRATA_BENCH_REPS and STRATA_BENCH_LOAD tune).
// STRATA_BENCH_BASE_GIB (default "1,10"), STRATA_BENCH_MEM_MIB (2048) and
// STRATA_BENCH_MIB (300) change the sizes; generated trees are kept in
// $TMPDIR/strata-bench-* for reruns (the 10 GiB base takes about 26 GB
// with umoci's bundle and layout: remove it afterwards).
func Bench() error {
	mg.SerialDeps(Deps, Build)
	cmd := exec.Command("go", "test", "-count=1", "-timeout=3h", "-v",
		"-run", "^(TestPrintBenchTable|TestPrintCommitBench|TestPrintEncodeBench|TestPrintUnpackTable)$", "./storage/layer/")
	cmd.Env = append(os.Environ(), "STRATA_BENCH=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	if err := benchEngine(); err != nil { // magefiles/bench_engine.go
		return err
	}
	if err := benchStepOverhead(); err != nil { // magefiles/rootless.go
		return err
	}
	return benchWorkloads() // magefiles/bench_workloads.go
}

// BenchEngine prints only the build engine's tables.
func BenchEngine() error {
	mg.SerialDeps(Deps, Build)
	return benchEngine()
}

// BenchSteps prints only the step overhead table, as root and rootless.
func BenchSteps() error {
	mg.SerialDeps(Deps, Build)
	return benchStepOverhead()
}

// BenchEdit prints only the edit-to-rebuild table: a script edited in a
// definitions .go file against the same change through --set.
func BenchEdit() error {
	mg.SerialDeps(Deps, Build)
	strata, err := filepath.Abs("bin/strata")
	if err != nil {
		return err
	}
	return benchEdit(strata, 7)
}
