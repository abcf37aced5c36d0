//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// phaseScenario is a build interrupted by signals during one phase, which
// the build's output opens and closes.
type phaseScenario struct {
	id         string // names its folders and seeds its random moments
	name       string // its row in the table
	pkg        string // the definitions package, relative to the faults package
	images     []string
	flags      []string // beyond store, layout and parameters
	start, end string   // prefixes of the output lines around the phase
	freshStore bool     // every trial starts on an empty store (a base is unpacked once per store)
	trials     int
	sigOffset  int // where in the KILL, INT, TERM cycle the first trial starts
}

var faultSignals = [3]syscall.Signal{syscall.SIGKILL, syscall.SIGINT, syscall.SIGTERM}

func stepScenario(trials int) phaseScenario {
	return phaseScenario{id: "step", name: fmt.Sprintf("step writing %d files", faultsFiles), images: []string{"many"},
		start: "many | faults: writing", end: "many | faults: written", trials: trials}
}

// commitScenarios splits the commit phase's trials between tar+gzip and
// squashfs; the second starts one signal further, so that together they
// send each signal about as often. The phase ends with the summary,
// which follows the layer's encoding and the layout's update (the line
// that reports the image says "built" or "rebuilt: REASON").
func commitScenarios(trials int) (tar, squashfs phaseScenario) {
	tar = phaseScenario{id: "commit-tar", name: fmt.Sprintf("commit %d MiB, tar+gzip", faultsBigMiB), images: []string{"big"},
		flags: []string{"--layer-type", "tar+gzip"}, start: "big | faults: written", end: "IMAGE ", trials: (trials + 1) / 2}
	squashfs = tar
	squashfs.id = "commit-squashfs"
	squashfs.name = fmt.Sprintf("commit %d MiB, squashfs", faultsBigMiB)
	squashfs.flags = []string{"--layer-type", "squashfs"}
	squashfs.trials, squashfs.sigOffset = trials/2, (trials+1)/2
	return tar, squashfs
}

// unpackScenario's phase runs from the image's first line to its step's
// first: the base's ingest into the store, its scan and its unpack.
func unpackScenario(trials int) phaseScenario {
	return phaseScenario{id: "unpack", name: fmt.Sprintf("unpack a %d MiB tarball base", faultsTarballMiB), pkg: "./tarball", images: []string{"unpacked"},
		start: "unpacked: building", end: "unpacked | faults: unpacked", freshStore: true, trials: trials}
}

// expectedExit is how strata must end after sig: 128+N for the signals
// it handles (130, 143), killed for SIGKILL.
func expectedExit(sig syscall.Signal, ws syscall.WaitStatus) bool {
	if sig == syscall.SIGKILL {
		return ws.Signaled() && ws.Signal() == syscall.SIGKILL
	}
	return ws.Exited() && ws.ExitStatus() == 128+int(sig)
}

// phaseTrials runs a scenario's trials: a clean build in a store of its
// own gives the digests and the phase's length; each trial builds
// (--no-cache, on an empty store or not) and receives a signal at a random
// moment within that length after the phase began; then the checks, the
// next build without a signal, and the checks again.
func (f *faultRun) phaseTrials(ctx context.Context, sc phaseScenario) error {
	clean, ref, err := f.cleanBuild(ctx, sc.id, sc.pkg, sc.images, sc.flags, sc.start, sc.end)
	if err != nil {
		return err
	}
	t0, ok0 := ref.seenAt(sc.start)
	t1, ok1 := ref.seenAt(sc.end)
	if !ok0 || !ok1 || t1 <= t0 {
		return fmt.Errorf("clean build of %s did not print %q then %q:\n%s", sc.name, sc.start, sc.end, ref.tail(20))
	}
	phase := t1 - t0
	fmt.Printf("faults: %s: phase of %.2f s in the clean build; %d trials\n", sc.name, phase.Seconds(), sc.trials)

	row := &faultRow{scenario: sc.name, trials: sc.trials, signalRow: true}
	f.rows = append(f.rows, row)
	dir := filepath.Join(f.work, sc.id)
	store, layout := filepath.Join(dir, "store"), filepath.Join(dir, "oci")
	rng := f.rng(sc.id)
	for i := range sc.trials {
		if err := ctx.Err(); err != nil {
			return err
		}
		sig := faultSignals[(i+sc.sigOffset)%3]
		delay := time.Duration(rng.Float64() * float64(phase))
		row.signals[(i+sc.sigOffset)%3]++
		// Every other trial starts on an empty store, so that the next
		// build has to finish what the interrupted one left; the others
		// interrupt a rebuild of an image the store already holds, which
		// must not damage the entry it would replace.
		fresh := sc.freshStore || i%2 == 0
		if fresh {
			if err := os.RemoveAll(store); err != nil {
				return err
			}
		}
		on := "on an empty store"
		if !fresh {
			on = "rebuilding over a stored image"
		}
		id := fmt.Sprintf("seed %d, %s, trial %d/%d (%s), %s %.3f s (of %.3f) after %q",
			f.seed, sc.name, i+1, sc.trials, on, sigName(sig), delay.Seconds(), phase.Seconds(), sc.start)
		t := &trial{f: f, row: row, id: id}
		if next := f.phaseTrial(ctx, t, sc, sig, delay, store, layout, clean); next != nil && !sc.freshStore {
			// The clean build may have run on a busier moment than the
			// trials: a next build that went through the whole phase
			// measures it again, and the shortest length seen bounds
			// the moments drawn, so that they fall within the phase.
			// (Not after an interrupted unpack: the next build finds
			// the base ingested and scanned, and its phase is shorter
			// than a trial's.)
			t0, ok0 := next.seenAt(sc.start)
			t1, ok1 := next.seenAt(sc.end)
			if ok0 && ok1 && t1 > t0 && t1-t0 < phase {
				phase = t1 - t0
			}
		}
		t.report()
	}
	return nil
}

// trial collects what one trial found; a trial that found nothing wrong
// prints one line, one that did prints each finding.
type trial struct {
	f        *faultRun
	row      *faultRow
	id       string
	notes    []string // what happened, for the progress line
	problems []string // what did not hold
	lost     bool
}

func (t *trial) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

func (t *trial) fail(format string, args ...any) {
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
}

func (t *trial) report() {
	if t.lost {
		t.row.lost++
	}
	status := "ok"
	if len(t.problems) > 0 {
		status = "FAILED"
	}
	fmt.Printf("  %s: %s: %s\n", t.id, status, strings.Join(t.notes, "; "))
	for _, p := range t.problems {
		fmt.Printf("    - %s\n", p)
		t.f.failures = append(t.f.failures, t.id+": "+p)
	}
}

// phaseTrial runs one trial and returns the next build's run.
func (f *faultRun) phaseTrial(ctx context.Context, t *trial, sc phaseScenario, sig syscall.Signal, delay time.Duration, store, layout string, clean map[string]string) *strataRun {
	args := f.buildArgs(sc.pkg, store, layout, sc.images, append([]string{"--no-cache"}, sc.flags...)...)
	run, err := f.startStrata(ctx, args, sc.start, sc.end)
	if err != nil {
		t.fail("start strata: %v", err)
		return nil
	}
	sent, late := false, false
	if run.waitLine(sc.start) {
		select {
		case <-time.After(delay):
		case <-run.done:
		}
		_, late = run.seenAt(sc.end)
		if sent, err = run.signal(sig); err != nil {
			t.fail("send %s: %v", sigName(sig), err)
		}
	}
	limit := faultsBuildLimit
	if sent {
		limit = faultsSignalLimit
	}
	hung := run.wait(limit)
	ws, status := run.status()
	switch {
	case hung:
		t.fail("strata did not exit within %s (killed); last lines:\n%s", limit, run.tail(10))
	case !sent:
		// The phase never began, or the build ended before the moment
		// came: no signal reached strata, so the build must simply have
		// worked.
		t.note("no signal sent: the build ended first (%s)", status)
		if ws.ExitStatus() != 0 {
			t.fail("the build ended before its phase, %s:\n%s", status, run.tail(10))
		} else {
			t.row.outcomeOK++
		}
	default:
		if late {
			t.note("%s after the phase ended", status)
		} else {
			t.row.inPhase++
			t.note("%s", status)
		}
		if expectedExit(sig, ws) {
			t.row.outcomeOK++
		} else {
			want := "killed by SIGKILL"
			if sig != syscall.SIGKILL {
				want = fmt.Sprintf("exit %d", 128+int(sig))
			}
			t.fail("after %s strata ended with %s, want %s; last lines:\n%s", sigName(sig), status, want, run.tail(6))
		}
	}
	f.afterBuild(t, "after the signal", store, layout, false)
	return f.nextBuild(ctx, t, sc.pkg, store, layout, sc.images, sc.flags, clean, sc.start, sc.end)
}

// afterBuild checks that nothing of a build that ended is left running
// or mounted, and that the output layout and the store's own layout hold
// every blob they reference, with its digest. finalStray makes temporary
// files in blobs/ a finding: a build that completed has had its chance
// to remove what an interrupted one left.
func (f *faultRun) afterBuild(t *trial, when, store, layout string, finalStray bool) {
	mounts, procs := f.leftovers(faultsGrace)
	if len(mounts) > 0 {
		t.row.mounts++
		t.fail("%s: %d mounts left: %s", when, len(mounts), strings.Join(mounts, "; "))
	}
	if len(procs) > 0 {
		t.row.procs++
		t.fail("%s: %d processes left: %s", when, len(procs), strings.Join(procs, "; "))
	}
	var c layoutCheck
	c.add(f.verifyLayout(layout))
	c.add(f.verifyLayout(filepath.Join(store, "oci")))
	t.row.missing += c.missing
	t.row.corrupt += c.corrupt
	if c.missing+c.corrupt > 0 {
		t.lost = true
		t.fail("%s: %d blobs missing, %d corrupt: %s", when, c.missing, c.corrupt, strings.Join(c.problems, "; "))
	}
	if len(c.stray) > 0 {
		if finalStray {
			t.row.stray++
			t.fail("%s: temporary files kept in blobs/: %s", when, strings.Join(c.stray, " "))
		} else {
			t.note("%d temporary files in blobs/", len(c.stray))
		}
	}
}

// nextBuild is the build after a fault: without a signal and with the
// cache, it must succeed and tag the clean build's manifest digests. It
// returns the run, whose lines that start with one of watch are timed.
func (f *faultRun) nextBuild(ctx context.Context, t *trial, pkg, store, layout string, images, flags []string, clean map[string]string, watch ...string) *strataRun {
	args := f.buildArgs(pkg, store, layout, images, flags...)
	start := time.Now()
	run, err := f.startStrata(ctx, args, watch...)
	if err != nil {
		t.fail("start the next build: %v", err)
		return nil
	}
	hung := run.wait(faultsBuildLimit)
	_, status := run.status()
	if hung || run.cmd.ProcessState.ExitCode() != 0 {
		t.lost = true
		t.fail("the next build failed (%s):\n%s\nrun: %s", status, run.tail(12), f.commandLine(args))
		f.afterBuild(t, "after the failed next build", store, layout, false)
		return run
	}
	if diff := compareDigests(layout, images, clean); len(diff) > 0 {
		t.lost = true
		t.fail("the next build's digests differ from the clean build's: %s", strings.Join(diff, "; "))
	} else {
		t.row.nextOK++
		t.note("next build %.1f s, clean digests", time.Since(start).Seconds())
	}
	f.afterBuild(t, "after the next build", store, layout, true)
	return run
}
