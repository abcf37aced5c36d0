//go:build mage

package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/magefile/mage/sh"
)

// rootlessTestUser is the unprivileged user the rootless half of the test
// suite runs as (cmd/strata/rootless_test.go, runtime/sandbox's
// TestRootless).
const rootlessTestUser = "stratatest"

// rootlessSetup creates the test user when it is missing and gives it
// subordinate ids with the real `strata unpriv-setup`, so that a fresh
// machine runs the rootless tests instead of skipping them. It needs root
// and bin/strata (the Build target).
func rootlessSetup() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the test suite sets up the user %s for its rootless half: run it as root", rootlessTestUser)
	}
	if exec.Command("id", "-u", rootlessTestUser).Run() != nil {
		// No home folder: the tests give the user the folders it needs.
		if err := sh.RunV("useradd", "-M", "-s", "/bin/sh", rootlessTestUser); err != nil {
			return err
		}
	}
	return sh.RunV("bin/strata", "unpriv-setup", "--user", rootlessTestUser, "--store", "")
}

// benchStepOverhead prints the step overhead table: a sandbox Run of one
// `true` step against `unshare --mount --pid --fork` mounting the same
// overlay and chrooting into it, and against the process alone, as root
// and (through TestRootless, which re-runs the test binary as the test
// user) unprivileged.
func benchStepOverhead() error {
	if err := rootlessSetup(); err != nil {
		return err
	}
	env := map[string]string{"STRATA_BENCH": "1"}
	return sh.RunWithV(env, "go", "test", "-count=1", "-v", "-run", "^(TestCompareUnshare|TestRootless)$", "./runtime/sandbox/")
}
