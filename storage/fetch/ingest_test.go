package fetch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/storage/fetch"
)

// TestIngestFileChecksWhatItReads: the runtime's own read of a local
// tarball base is checked against the digest evaluation computed (the pin,
// when one is given), so a file replaced after evaluation cannot be
// unpacked under the pinned digest.
func TestIngestFileChecksWhatItReads(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "store"))
	file := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(file, []byte("replaced"), 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := digest.FromString("checked at evaluation")
	err := fetch.IngestFile(context.Background(), st, file, pinned)
	if !errors.Is(err, fetch.ErrDigestMismatch) || !strings.Contains(err.Error(), file) ||
		!strings.Contains(err.Error(), pinned.String()) || !strings.Contains(err.Error(), digest.FromString("replaced").String()) {
		t.Errorf("a file that does not match: %v", err)
	}
	if _, err := os.Stat(st.BlobPath(pinned.String())); err == nil {
		t.Error("the mismatching file was stored under the pinned digest")
	}
}
