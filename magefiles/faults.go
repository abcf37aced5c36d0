//go:build mage

package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magefile/mage/mg"
	"github.com/strata-build/strata/internal/procstat"
	"golang.org/x/sys/unix"
)

// Workload sizes: large enough that each phase lasts long enough to be
// hit at a random moment, small enough that the whole target stays
// within about a quarter of an hour on this project's 2-core machine.
const (
	faultsFiles       = 20000 // small files the "many" step writes
	faultsBigMiB      = 200   // the "big" commit
	faultsTarballMiB  = 256   // uncompressed size of the tarball base
	faultsNoiseMiB    = 16    // the incompressible file the images import
	faultsEpoch       = "1700000000"
	faultsBuildLimit  = 10 * time.Minute // a build that takes longer is hung
	faultsSignalLimit = 2 * time.Minute  // so is one that outlives a signal by this much
	faultsGrace       = 5 * time.Second  // for processes and mounts to go after strata exits
)

// Faults injects faults into real builds with bin/strata (as root) and
// prints a table of what held. On the images of
// cmd/strata/testdata/faults it sends SIGKILL, SIGINT and SIGTERM at
// random moments (drawn within each phase's length in a clean build)
// while a step writes 20,000 files, while a 200 MiB layer is committed
// as tar+gzip and as squashfs, and while a 256 MiB tarball base is
// unpacked; it builds two and four at once on one store; and it fills a
// small tmpfs store during a step and during a commit, then retries with
// more room. After every trial: no mount or process of the build left,
// every blob of the output layout and of the store's layout present with
// its digest, the exit status expected (130 SIGINT, 143 SIGTERM, killed
// for SIGKILL), and the next build succeeds with the manifest digests of
// a clean build made in a separate store at the start.
//
// STRATA_FAULTS_SEED (default: the clock; printed) makes the moments
// repeatable; STRATA_FAULTS_TRIALS (default 20) is the number of signal
// trials per phase; STRATA_FAULTS_SCENARIOS (default
// "step,commit,unpack,concurrent,diskfull") picks what runs;
// STRATA_FAULTS_KEEP=1 keeps the work folder. Fails when anything did
// not hold, after naming the trial (seed, scenario, signal, delay).
func Faults(ctx context.Context) error {
	mg.SerialDeps(Deps, Build)
	return runFaults(ctx)
}

// faultRun is one run of the Faults target: its settings, its work
// folder, and what the trials found.
type faultRun struct {
	strata string   // bin/strata, absolute
	defs   string   // the definitions package's folder
	work   string   // everything the run writes; removed at the end
	env    []string // added to strata's environment
	params []string // --set flags every build gets
	seed   uint64
	trials int

	ownMounts map[string]bool // mounts the target made itself (the small tmpfs)
	hashes    map[hashKey]string
	rows      []*faultRow
	failures  []string
}

func runFaults(ctx context.Context) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("faults: run as root (the builds mount, and the disk-full trials mount a tmpfs)")
	}
	began := time.Now()
	f := &faultRun{trials: 20, ownMounts: map[string]bool{}, hashes: map[hashKey]string{}}
	f.seed = uint64(time.Now().UnixNano())
	if s := os.Getenv("STRATA_FAULTS_SEED"); s != "" {
		if f.seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("STRATA_FAULTS_SEED=%q: not a whole number", s)
		}
	}
	if s := os.Getenv("STRATA_FAULTS_TRIALS"); s != "" {
		if f.trials, err = strconv.Atoi(s); err != nil || f.trials < 1 {
			return fmt.Errorf("STRATA_FAULTS_TRIALS=%q: not a positive whole number", s)
		}
	}
	all := []string{"step", "commit", "unpack", "concurrent", "diskfull"}
	scenarios := all
	if s := os.Getenv("STRATA_FAULTS_SCENARIOS"); s != "" {
		scenarios = strings.Split(s, ",")
		for _, sc := range scenarios {
			if !slices.Contains(all, sc) {
				return fmt.Errorf("STRATA_FAULTS_SCENARIOS: unknown scenario %q (known: %s)", sc, strings.Join(all, ","))
			}
		}
	}
	if f.strata, err = filepath.Abs("bin/strata"); err != nil {
		return err
	}
	if f.defs, err = filepath.Abs("cmd/strata/testdata/faults"); err != nil {
		return err
	}
	if f.work, err = os.MkdirTemp("", "strata-faults-"); err != nil {
		return err
	}
	defer func() {
		for m := range f.ownMounts {
			unix.Unmount(m, unix.MNT_DETACH)
		}
		if os.Getenv("STRATA_FAULTS_KEEP") == "1" {
			fmt.Println("faults: kept", f.work)
			return
		}
		os.RemoveAll(f.work)
	}()
	// A killed strata's children are reparented to the nearest child
	// subreaper: being one makes every process a build leaves behind a
	// descendant of this one, whatever it did to its process group.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	fmt.Printf("faults: seed %d (STRATA_FAULTS_SEED=%d to repeat), %d signal trials per phase, scenarios %s, work folder %s\n",
		f.seed, f.seed, f.trials, strings.Join(scenarios, ","), f.work)

	noise, tarball := filepath.Join(f.work, "noise.bin"), filepath.Join(f.work, "base.tar.gz")
	if err := writeNoise(noise, faultsNoiseMiB<<20); err != nil {
		return err
	}
	if slices.Contains(scenarios, "unpack") { // the only images that read it
		start := time.Now()
		if err := writeTarballBase(tarball, faultsTarballMiB); err != nil {
			return err
		}
		fi, err := os.Stat(tarball)
		if err != nil {
			return err
		}
		fmt.Printf("faults: tarball base of %d MiB (%.0f MiB gzip) written in %.1f s\n", faultsTarballMiB, float64(fi.Size())/(1<<20), time.Since(start).Seconds())
	}
	// Every image of a package is evaluated on every build of it, so
	// every build gets every parameter, whichever image it builds.
	f.params = []string{"--set", "FAULTS_NOISE=" + noise, "--set", "FAULTS_TARBALL=" + tarball,
		"--set", fmt.Sprint("FAULTS_FILES=", faultsFiles), "--set", fmt.Sprint("FAULTS_BIG_MIB=", faultsBigMiB),
		"--set", fmt.Sprint("FAULTS_FILL_MIB=", fillMiB), "--set", fmt.Sprint("FAULTS_NOISE_MIB=", noiseMiB)}
	f.env = []string{"SOURCE_DATE_EPOCH=" + faultsEpoch}

	for _, sc := range scenarios {
		var err error
		switch sc {
		case "step":
			err = f.phaseTrials(ctx, stepScenario(f.trials))
		case "commit":
			// The commit phase's trials alternate between the two
			// encoders, so the phase gets f.trials in all.
			tar, sq := commitScenarios(f.trials)
			if err = f.phaseTrials(ctx, tar); err == nil {
				err = f.phaseTrials(ctx, sq)
			}
		case "unpack":
			err = f.phaseTrials(ctx, unpackScenario(f.trials))
		case "concurrent":
			err = f.concurrentTrials(ctx)
		case "diskfull":
			err = f.diskFullTrials(ctx)
		}
		if err != nil {
			// The harness itself failed (a clean build did not work, a
			// mount could not be made): what was measured so far still
			// prints.
			f.failures = append(f.failures, fmt.Sprintf("scenario %s could not run: %v", sc, err))
		}
	}
	f.printTable(time.Since(began))
	if len(f.failures) > 0 {
		fmt.Printf("\nfaults: %d things did not hold (seed %d):\n", len(f.failures), f.seed)
		for _, fl := range f.failures {
			fmt.Println("- " + fl)
		}
		return fmt.Errorf("faults: %d things did not hold", len(f.failures))
	}
	return nil
}

// rng is the random source of one scenario: derived from the seed and
// the scenario's name, so that running a subset of the scenarios draws
// the same moments for those that run.
func (f *faultRun) rng(scenario string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(scenario))
	return rand.New(rand.NewPCG(f.seed, h.Sum64()))
}

// buildArgs is a `strata build` of images on store and layout, with the
// run's parameters and extra flags. pkg is the definitions package
// relative to the faults package ("" for that one).
func (f *faultRun) buildArgs(pkg, store, layout string, images []string, extra ...string) []string {
	args := []string{"build"}
	if pkg != "" {
		args = append(args, pkg)
	}
	args = append(args, images...)
	args = append(args, "--store", store, "--layout", layout, "--progress", "plain")
	args = append(args, f.params...)
	return append(args, extra...)
}

// cleanBuild builds images in a store and layout of their own, as the
// reference every trial's next build is compared with, and returns the
// tags' manifest digests and the run (for the phase's timing).
func (f *faultRun) cleanBuild(ctx context.Context, id, pkg string, images []string, extra []string, watch ...string) (map[string]string, *strataRun, error) {
	dir := filepath.Join(f.work, "clean-"+id)
	layout := filepath.Join(dir, "oci")
	args := f.buildArgs(pkg, filepath.Join(dir, "store"), layout, images, extra...)
	run, err := f.startStrata(ctx, args, watch...)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	if hung := run.wait(faultsBuildLimit); hung || run.cmd.ProcessState.ExitCode() != 0 {
		return nil, nil, fmt.Errorf("clean build %s failed:\n%s\nrun: %s", id, run.tail(15), f.commandLine(args))
	}
	digests, err := tags(layout)
	if err != nil {
		return nil, nil, err
	}
	for _, img := range images {
		if digests[img] == "" {
			return nil, nil, fmt.Errorf("clean build %s did not tag %s", id, img)
		}
	}
	fmt.Printf("faults: clean build of %s in %.1f s\n", strings.Join(images, ", "), time.Since(start).Seconds())
	return digests, run, nil
}

// faultRow is one line of the table.
type faultRow struct {
	scenario  string
	trials    int
	signals   [3]int // SIGKILL, SIGINT, SIGTERM sent (not for the concurrent and disk-full rows)
	inPhase   int    // signals that reached strata within the phase
	outcomeOK int    // exit status as expected
	mounts    int    // trials that left a mount
	procs     int    // trials that left a process
	missing   int    // blobs referenced but absent, over all trials
	corrupt   int    // blobs with the wrong content, over all trials
	stray     int    // trials after which temporary files stayed in a layout's blobs/ past the next build
	nextOK    int    // next builds that succeeded with the clean digests
	lost      int    // trials after which an image was lost or corrupted
	signalRow bool
}

func (f *faultRun) printTable(took time.Duration) {
	fmt.Printf("\n| scenario | trials | signals KILL/INT/TERM (in phase) | exit as expected | left: mounts / processes | blobs missing / corrupt | temp files kept | next build ok, clean digests |\n")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|")
	lost, trials := 0, 0
	for _, r := range f.rows {
		sigs := "—"
		if r.signalRow {
			sigs = fmt.Sprintf("%d/%d/%d (%d)", r.signals[0], r.signals[1], r.signals[2], r.inPhase)
		}
		fmt.Printf("| %s | %d | %s | %d/%d | %d / %d | %d / %d | %d | %d/%d |\n", r.scenario, r.trials, sigs,
			r.outcomeOK, r.trials, r.mounts, r.procs, r.missing, r.corrupt, r.stray, r.nextOK, r.trials)
		lost += r.lost
		trials += r.trials
	}
	fmt.Printf("\nlost or corrupted images: %d (in %d trials; seed %d; %.1f min; load average at the end %s)\n",
		lost, trials, f.seed, took.Minutes(), procstat.LoadAverage())
}
