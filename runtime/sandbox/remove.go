package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RemoveAll removes the tree at path from inside a user namespace with the
// given maps. A rootless build leaves files owned by subordinate ids (a
// step's chown, a package's files) in folders the user cannot write; only
// the namespace that maps those ids can remove them. With nil maps it is
// os.RemoveAll.
func RemoveAll(ctx context.Context, path string, uidMap, gidMap []IDMap) error {
	if len(uidMap) == 0 && len(gidMap) == 0 {
		return removeTree(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	stage, err := newStage("")
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	defer removeTree(stage)
	cs := &childSpec{Mode: modeRemove, Name: "strata-remove", Rootless: true, Remove: abs}
	res, err := startChild(ctx, cs, stage, childIO{stderr: os.Stderr}, uidMap, gidMap)
	if err == nil && res.Error != "" {
		err = errors.New(res.Error)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// runRemove is RemoveAll's child: root of the user namespace may remove
// everything the namespace's ids own.
func runRemove(cs *childSpec) error {
	if err := becomeRoot(); err != nil {
		return err
	}
	return removeTree(cs.Remove)
}
