//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Sizes of the disk-full trials. Every build first checks that its store
// has 512 MiB free (runtime/host/check.go), so the small filesystem must
// start with more than that, and the images fill it after the check.
const (
	smallMiB = 600  // the small tmpfs
	largeMiB = 1600 // after "freeing space" by remounting larger
	fillMiB  = 640  // the fill step writes more than the small tmpfs holds
	noiseMiB = 360  // the noise step fits, but not with a layer of its size beside it
)

// diskFullCase is a build that runs out of space on a small store.
type diskFullCase struct {
	name   string
	image  string
	filler bool // start with a filler file on a larger tmpfs, and free space by removing it (else: remount larger)
}

var diskFullCases = []diskFullCase{
	{"disk full during a step, retry after remount", "fill", false},
	{"disk full during a step, retry after removing a filler", "fill", true},
	{"disk full during a commit, retry after remount", "noise", false},
	{"disk full during a commit, retry after removing a filler", "noise", true},
}

// diskFullTrials builds on a store on a small tmpfs until the disk is
// full: the build must fail with a message that says so, leave no mount
// and no half-written layer or tag (busybox, built before on the same
// store, must be intact and the failed image untagged); after freeing
// space the same build must succeed with the clean build's digests.
func (f *faultRun) diskFullTrials(ctx context.Context) error {
	clean, _, err := f.cleanBuild(ctx, "diskfull", "", []string{"busybox", "fill", "noise"}, nil)
	if err != nil {
		return err
	}
	for _, dc := range diskFullCases {
		if err := ctx.Err(); err != nil {
			return err
		}
		row := &faultRow{scenario: dc.name, trials: 1}
		f.rows = append(f.rows, row)
		t := &trial{f: f, row: row, id: fmt.Sprintf("seed %d, %s", f.seed, dc.name)}
		if err := f.diskFullTrial(ctx, t, dc, clean); err != nil {
			t.fail("%v", err)
		}
		t.report()
	}
	return nil
}

func (f *faultRun) diskFullTrial(ctx context.Context, t *trial, dc diskFullCase, clean map[string]string) error {
	mnt := filepath.Join(f.work, "small-"+dc.image)
	if dc.filler {
		mnt += "-filler"
	}
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return err
	}
	size := smallMiB
	if dc.filler {
		size = smallMiB + 400
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", size)); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", mnt, err)
	}
	f.ownMounts[mnt] = true
	defer func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err == nil {
			delete(f.ownMounts, mnt)
		}
	}()
	filler := filepath.Join(mnt, "filler")
	if dc.filler {
		if err := writeZeros(filler, 400<<20); err != nil {
			return err
		}
	}
	store, layout := filepath.Join(mnt, "store"), filepath.Join(mnt, "oci")

	// Something already built on the store, which the failure must not
	// touch.
	if err := f.quietBuild(ctx, store, layout, []string{"busybox"}); err != nil {
		return err
	}
	before := usedMiB(mnt)
	args := f.buildArgs("", store, layout, []string{dc.image})
	run, err := f.startStrata(ctx, args)
	if err != nil {
		return err
	}
	hung := run.wait(faultsBuildLimit)
	_, status := run.status()
	out := run.output()
	switch {
	case hung:
		t.fail("the build on a full disk did not end within %s", faultsBuildLimit)
	case run.cmd.ProcessState.ExitCode() == 0:
		t.fail("the build succeeded on a %d MiB tmpfs: the workload no longer fills it", size)
	case !strings.Contains(strings.ToLower(out), "no space left on device"):
		t.fail("the build failed (%s) without saying the disk is full; its last lines:\n%s", status, run.tail(8))
	default:
		t.row.outcomeOK++
		t.note("failed as expected (%s)", status)
	}
	t.note("%.0f MiB still used on the tmpfs by the failed build", usedMiB(mnt)-before)
	f.afterBuild(t, "after the failed build", store, layout, false)
	got, err := tags(layout)
	if err != nil {
		t.lost = true
		t.fail("read the layout after the failed build: %v", err)
	} else {
		if got[dc.image] != "" {
			t.fail("the failed build tagged %s (%s)", dc.image, got[dc.image])
		}
		if got["busybox"] != clean["busybox"] {
			t.lost = true
			t.fail("busybox, built before the failure, is now %s (clean: %s)", orNone(got["busybox"]), clean["busybox"])
		}
	}

	if dc.filler {
		if err := os.Remove(filler); err != nil {
			return err
		}
	} else if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, fmt.Sprintf("size=%dm", largeMiB)); err != nil {
		return fmt.Errorf("remount %s larger: %w", mnt, err)
	}
	f.nextBuild(ctx, t, "", store, layout, []string{"busybox", dc.image}, nil, clean)
	return nil
}

// quietBuild builds images and fails with the output when the build does.
func (f *faultRun) quietBuild(ctx context.Context, store, layout string, images []string) error {
	args := f.buildArgs("", store, layout, images)
	run, err := f.startStrata(ctx, args)
	if err != nil {
		return err
	}
	if hung := run.wait(faultsBuildLimit); hung || run.cmd.ProcessState.ExitCode() != 0 {
		return fmt.Errorf("build %s failed:\n%s\nrun: %s", strings.Join(images, " "), run.tail(10), f.commandLine(args))
	}
	return nil
}

func writeZeros(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	// Written, not truncated to size: a sparse file would take no room.
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func usedMiB(dir string) float64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 0
	}
	return float64((st.Blocks-st.Bfree)*uint64(st.Bsize)) / (1 << 20)
}
