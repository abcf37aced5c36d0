//go:build mage

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// concurrentRounds is how often each concurrency case runs.
const concurrentRounds = 3

// concurrentCase is a set of builds started at the same moment on one
// store and one layout.
type concurrentCase struct {
	name   string
	builds [][]string // the images each build names
	noWait bool       // --no-wait: a build may fail at once, with a message naming the holder
}

var concurrentCases = []concurrentCase{
	{"2 builds at once, same image", [][]string{{"conc0"}, {"conc0"}}, false},
	{"2 builds at once, different images", [][]string{{"conc0"}, {"conc1"}}, false},
	{"4 builds at once, same image", [][]string{{"conc0"}, {"conc0"}, {"conc0"}, {"conc0"}}, false},
	{"4 builds at once, different images", [][]string{{"conc0"}, {"conc1"}, {"conc2"}, {"conc3"}}, false},
	{"4 builds at once, --no-wait", [][]string{{"conc0"}, {"conc1"}, {"conc0", "conc2"}, {"conc3"}}, true},
}

// concurrentTrials starts builds side by side on one store (--no-cache,
// so each has work to do while the others wait): each must succeed,
// having waited its turn, or with --no-wait fail at once saying who holds
// the store; the layouts must then hold the clean digests, and the next
// build must too.
func (f *faultRun) concurrentTrials(ctx context.Context) error {
	all := []string{"conc0", "conc1", "conc2", "conc3"}
	clean, _, err := f.cleanBuild(ctx, "concurrent", "", all, nil)
	if err != nil {
		return err
	}
	dir := filepath.Join(f.work, "concurrent")
	store, layout := filepath.Join(dir, "store"), filepath.Join(dir, "oci")
	for _, cc := range concurrentCases {
		row := &faultRow{scenario: cc.name, trials: concurrentRounds}
		f.rows = append(f.rows, row)
		for round := range concurrentRounds {
			if err := ctx.Err(); err != nil {
				return err
			}
			t := &trial{f: f, row: row, id: fmt.Sprintf("seed %d, %s, round %d/%d", f.seed, cc.name, round+1, concurrentRounds)}
			f.concurrentRound(ctx, t, cc, store, layout, all, clean)
			t.report()
		}
	}
	return nil
}

func (f *faultRun) concurrentRound(ctx context.Context, t *trial, cc concurrentCase, store, layout string, all []string, clean map[string]string) {
	extra := []string{"--no-cache"}
	if cc.noWait {
		extra = append(extra, "--no-wait")
	}
	start := time.Now()
	runs := make([]*strataRun, len(cc.builds))
	for i, images := range cc.builds {
		run, err := f.startStrata(ctx, f.buildArgs("", store, layout, images, extra...))
		if err != nil {
			t.fail("start build %d: %v", i+1, err)
			for _, r := range runs[:i] {
				r.wait(faultsBuildLimit)
			}
			return
		}
		runs[i] = run
	}
	ok, waited, refused := true, 0, 0
	built := map[string]bool{}
	for i, run := range runs {
		hung := run.wait(faultsBuildLimit)
		_, status := run.status()
		out := run.output()
		if strings.Contains(out, "waiting for store") {
			waited++
		}
		switch {
		case hung:
			ok = false
			t.fail("build %d (%s) did not end within %s", i+1, strings.Join(cc.builds[i], " "), faultsBuildLimit)
		case run.cmd.ProcessState.ExitCode() == 0:
			for _, img := range cc.builds[i] {
				built[img] = true
			}
		case cc.noWait && strings.Contains(out, "is in use by"):
			refused++
		default:
			ok = false
			t.fail("build %d (%s) failed (%s):\n%s", i+1, strings.Join(cc.builds[i], " "), status, run.tail(10))
		}
	}
	if ok {
		t.row.outcomeOK++
	}
	t.note("%d builds in %.1f s: %d waited their turn, %d refused at once (--no-wait)", len(runs), time.Since(start).Seconds(), waited, refused)
	f.afterBuild(t, "after the concurrent builds", store, layout, true)
	// What the builds that succeeded tagged must already be the clean
	// build's images: the builds are reproducible.
	var done []string
	for _, img := range all {
		if built[img] {
			done = append(done, img)
		}
	}
	if diff := compareDigests(layout, done, clean); len(diff) > 0 {
		t.lost = true
		t.fail("after the concurrent builds: %s", strings.Join(diff, "; "))
	}
	f.nextBuild(ctx, t, "", store, layout, all, nil, clean)
}
