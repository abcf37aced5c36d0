package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
)

// CheckOverlay verifies, for `strata check` and the start of a build, that
// this machine can do what a build needs: in a throwaway sandbox (the same
// re-exec as [Run]) it mounts an overlay of two lower dirs, creates a file
// and deletes a lower file, and verifies that the upper dir holds the file
// and a 0/0 character-device whiteout. Non-empty maps make the check
// rootless, as a build with those maps would be. Inside a chroot, where
// the child could only fail with an error that blames the kernel, its
// error wraps the *ChrootError of DetectChroot instead (see startChild).
func CheckOverlay(ctx context.Context, uidMap, gidMap []IDMap) error {
	rootless := len(uidMap) > 0 || len(gidMap) > 0
	stage, err := newStage("")
	if err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	defer removeTree(stage)
	cs := &childSpec{Mode: modeCheck, Name: "strata-check", Rootless: rootless}
	for _, d := range []string{"l1", "l2", "upper", "work", "mnt"} {
		if err := os.Mkdir(filepath.Join(stage, d), 0o755); err != nil {
			return fmt.Errorf("check overlay: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "l2", "gone"), []byte("x"), 0o644); err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stage, "l1", "kept"), []byte("x"), 0o644); err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	cs.Lowers = []string{filepath.Join(stage, "l1"), filepath.Join(stage, "l2")}
	cs.Upper, cs.Work, cs.Rootfs = filepath.Join(stage, "upper"), filepath.Join(stage, "work"), filepath.Join(stage, "mnt")
	res, err := startChild(ctx, cs, stage, childIO{stderr: os.Stderr}, uidMap, gidMap)
	if err == nil && res.Error != "" {
		err = errors.New(res.Error)
	}
	if err != nil {
		mode := "as root"
		if rootless {
			mode = "rootless"
		}
		return fmt.Errorf("check overlay (%s): %w", mode, err)
	}
	return nil
}

// runCheck is CheckOverlay's child.
func runCheck(cs *childSpec) error {
	if cs.Rootless {
		if err := becomeRoot(); err != nil {
			return err
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	if err := mountOverlay(cs.Lowers, cs.Upper, cs.Work, cs.Rootfs, cs.Rootless); err != nil {
		return err
	}
	for _, name := range []string{"kept", "gone"} {
		if _, err := os.Stat(filepath.Join(cs.Rootfs, name)); err != nil {
			return fmt.Errorf("lower file missing from the overlay: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(cs.Rootfs, "new"), []byte("y"), 0o644); err != nil {
		return fmt.Errorf("write to the overlay: %w", err)
	}
	if err := os.Remove(filepath.Join(cs.Rootfs, "gone")); err != nil {
		return fmt.Errorf("delete a lower file (whiteout): %w", err)
	}
	if _, err := os.Stat(filepath.Join(cs.Upper, "new")); err != nil {
		return fmt.Errorf("new file not in the upper dir: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(cs.Upper, "gone"), &st); err != nil {
		return fmt.Errorf("no whiteout in the upper dir: %w", err)
	}
	if !overlayfs.IsWhiteoutStat(&st) {
		return fmt.Errorf("whiteout is not a 0/0 character device (mode %o, rdev %d)", st.Mode, st.Rdev)
	}
	return nil
}
