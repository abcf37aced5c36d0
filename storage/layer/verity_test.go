package layer

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/strata-build/strata/internal/verity"
)

// checkVerity runs veritysetup verify on a layer blob with its root hash,
// then again with one byte of the file system flipped, which must fail.
func checkVerity(t *testing.T, blobPath, root string) {
	t.Helper()
	bin, err := exec.LookPath("veritysetup")
	if err != nil {
		t.Skip("needs veritysetup (apt-get install cryptsetup-bin)")
	}
	blob, err := os.ReadFile(blobPath)
	must(t, err)
	_, off, err := FSImage(bytes.NewReader(blob))
	must(t, err)
	if int64(len(blob)) != off+verity.HashAreaSize(off/verity.BlockSize) {
		t.Fatalf("blob of %d bytes: file system %d + tree %d", len(blob), off, verity.HashAreaSize(off/verity.BlockSize))
	}
	verify := func(p string) error {
		out, err := exec.Command(bin, "verify", p, p, root, "--hash-offset", strconv.FormatInt(off, 10)).CombinedOutput()
		if err != nil {
			t.Logf("veritysetup: %s", out)
		}
		return err
	}
	if err := verify(blobPath); err != nil {
		t.Fatalf("veritysetup verify %s: %v", blobPath, err)
	}
	blob[off/2] ^= 0x40
	bad := filepath.Join(t.TempDir(), "flipped")
	must(t, os.WriteFile(bad, blob, 0o644))
	if verify(bad) == nil {
		t.Fatal("veritysetup verify accepted a flipped byte")
	}
}
