package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreflightRemembersWhatPassed counts the full check runs: a second
// build with nothing changed runs none, one that wants squashfs (or a
// store elsewhere) runs them again, and a run that failed is not
// remembered.
func TestPreflightRemembersWhatPassed(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	runs, fail := 0, false
	orig := runChecks
	t.Cleanup(func() { runChecks = orig })
	runChecks = func(context.Context, CheckOptions) []Check {
		runs++
		return []Check{{Name: "the machine", Required: true, OK: !fail, Detail: "made up", Fix: "none"}}
	}
	ctx := context.Background()
	store := filepath.Join(t.TempDir(), "store")
	no := false
	o := CheckOptions{Store: store, Rootless: &no}
	for i, want := range []int{1, 1, 1} {
		if err := Preflight(ctx, o); err != nil {
			t.Fatal(err)
		}
		if runs != want {
			t.Fatalf("build %d: %d full check runs, want %d", i+1, runs, want)
		}
	}
	other := o
	other.Store = filepath.Join(t.TempDir(), "other")
	if err := Preflight(ctx, other); err != nil || runs != 2 {
		t.Fatalf("another store: %d runs, %v", runs, err)
	}
	if path, err := passedFile(); err != nil || !strings.HasPrefix(path, os.Getenv("XDG_CACHE_HOME")) {
		t.Errorf("passed keys kept in %q, %v", path, err)
	}

	// A build that passed before neither runs the checks nor rewrites
	// what it remembers.
	path, _ := passedFile()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Preflight(ctx, o); err != nil || runs != 2 {
		t.Fatalf("again: %d runs, %v", runs, err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("a build whose checks passed before rewrote the passed keys")
	}

	// Squashfs layers add mksquashfs to what the checks depend on: a new
	// key, then none while it stays as it is, then one when it changes.
	tools := t.TempDir()
	mksquashfs := filepath.Join(tools, "mksquashfs")
	if err := os.WriteFile(mksquashfs, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", tools+":"+os.Getenv("PATH"))
	sq := o
	sq.Squashfs = true
	for i, want := range []int{3, 3} {
		if err := Preflight(ctx, sq); err != nil || runs != want {
			t.Fatalf("squashfs build %d: %d runs, %v; want %d", i+1, runs, err, want)
		}
	}
	if err := os.Chmod(mksquashfs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Preflight(ctx, sq); err != nil || runs != 4 {
		t.Fatalf("after mksquashfs changed: %d runs, %v; want the checks run again", runs, err)
	}

	// What fails is checked again next time.
	fail = true
	third := o
	third.Store = filepath.Join(t.TempDir(), "third")
	if err := Preflight(ctx, third); err == nil {
		t.Fatal("a failed check let the build go on")
	}
	fail = false
	if err := Preflight(ctx, third); err != nil || runs != 6 {
		t.Fatalf("after a failure: %d runs, %v; want the checks run again", runs, err)
	}
}
