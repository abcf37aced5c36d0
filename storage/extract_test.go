package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExtractSpecialFiles: what grab writes on the host is as harmless as
// a download unless asked: no set-id bits, no device nodes.
func TestExtractSpecialFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make device nodes")
	}
	layer := t.TempDir()
	os.MkdirAll(filepath.Join(layer, "x"), 0o755)
	os.WriteFile(filepath.Join(layer, "x", "suid"), []byte("#!/bin/sh\n"), 0o755)
	os.Chmod(filepath.Join(layer, "x", "suid"), 0o755|os.ModeSetuid)
	if err := unix.Mknod(filepath.Join(layer, "x", "disk"), unix.S_IFBLK|0o666, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var log bytes.Buffer
	plain := filepath.Join(t.TempDir(), "x")
	if err := ExtractDirs(ctx, []string{layer}, "/x", plain, ExtractOptions{Log: &log}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(plain, "suid")); err != nil || fi.Mode()&os.ModeSetuid != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("suid extracted as %v, %v; want 0755 without set-id", fi.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(plain, "disk")); err == nil {
		t.Error("a device node was written on the host")
	}
	if !strings.Contains(log.String(), "left out "+filepath.Join(plain, "disk")) {
		t.Errorf("log %q does not name the node left out", log.String())
	}

	special := filepath.Join(t.TempDir(), "x")
	if err := ExtractDirs(ctx, []string{layer}, "/x", special, ExtractOptions{Special: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(special, "suid")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("with Special, suid extracted as %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(special, "disk")); err != nil || fi.Mode()&os.ModeDevice == 0 {
		t.Errorf("with Special, the device node: %v, %v", fi, err)
	}
}
