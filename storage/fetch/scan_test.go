package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A scan cut by a cancellation says so, not that the archive is bad (a
// Ctrl-C during a tarball base's scan read as "not a tar archive").
func TestScanTarballCancelled(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range 64 {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: 4096, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scanTarball(context.Background(), file); err != nil {
		t.Fatalf("scan of a good tarball: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := scanTarball(ctx, file)
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "not a tar archive") {
		t.Errorf("scan of a cancelled build: %v, want context.Canceled alone", err)
	}
}
