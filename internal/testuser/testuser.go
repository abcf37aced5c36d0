// Package testuser makes the unprivileged users the tests that run as
// someone else (rootless builds, FUSE mounts) re-run their binaries as.
package testuser

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Ensure creates the user name (a system user when system is set) unless
// it exists, and returns its uid. It needs root and useradd.
func Ensure(t testing.TB, name string, system bool) int {
	t.Helper()
	if exec.Command("id", "-u", name).Run() != nil {
		args := []string{"-M", "-s", "/bin/sh"}
		if system {
			args = append(args, "-r")
		}
		if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	}
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatalf("id -u %s: %v", name, err)
	}
	uid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("id -u %s: %q", name, out)
	}
	return uid
}
