package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFullDiskIsNamed: a step that fills the store's filesystem fails with
// a summary that says so and names the store, not only "exit status 1".
func TestFullDiskIsNamed(t *testing.T) {
	b := newBuild(t, "testdata/storage/fill")
	mnt := t.TempDir()
	// Above the free space a build requires at its start (512 MiB),
	// below what the step writes.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=544m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	b.store = filepath.Join(mnt, "store")
	out, code := b.run([]string{"STRATA_TEST_FILL_MIB=600"}, "build", "fill")
	if code == 0 {
		t.Fatalf("a step writing 600 MiB into a 544 MiB store succeeded:\n%s", out)
	}
	want := "; no space left on device: the store's filesystem (" + b.store + ") is full"
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAILED fill: ") {
			line = l
		}
	}
	if !strings.Contains(line, "failed: exit status 1"+want) {
		t.Errorf("summary line %q, want it to end the step's failure with %q:\n%s", line, want, out)
	}
	noMountsUnder(t, b.store)
	// The failed step's workspace is gone: the space is free again.
	if entries, _ := os.ReadDir(filepath.Join(b.store, "tmp")); len(entries) != 0 {
		t.Errorf("the failed build left %d entries in the store's tmp/", len(entries))
	}
}
