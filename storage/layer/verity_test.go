package layer

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/strata-build/strata/internal/verity"
)

// fsImageSize is where the verity tree of a squashfs or erofs blob
// begins: the file system's own size, rounded up to 4 KiB (stacker's rule).
func fsImageSize(t *testing.T, blob []byte) int64 {
	t.Helper()
	var n int64
	switch {
	case string(blob[:4]) == "hsqs":
		n = int64(binary.LittleEndian.Uint64(blob[40:]))
	case binary.LittleEndian.Uint32(blob[1024:]) == 0xe0f5e1e2:
		n = int64(binary.LittleEndian.Uint32(blob[1024+36:])) << blob[1024+12]
	default:
		t.Fatal("neither squashfs nor erofs")
	}
	return (n + 4095) / 4096 * 4096
}

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
	off := fsImageSize(t, blob)
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
