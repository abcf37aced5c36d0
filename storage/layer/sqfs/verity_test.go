package sqfs_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage/layer/sqfs"
)

// The tree the writer computes while writing must be the one veritysetup
// checks, and the one verity.Append computes from the finished image, at
// stacker's hash offset: bytes_used rounded up to 4 KiB.
func TestVerity(t *testing.T) {
	es := sample()
	img, res := build(t, es, sqfs.Options{ModTime: epoch, Verity: true})
	plain, plainRes := build(t, es, sqfs.Options{ModTime: epoch})
	if plainRes.RootHash != "" {
		t.Errorf("RootHash %q without Verity", plainRes.RootHash)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	used := int64(binary.LittleEndian.Uint64(b[40:]))
	offset := (used + 4095) / 4096 * 4096
	if res.Size != int64(len(b)) || res.Size != offset+verity.HashAreaSize(offset/4096) {
		t.Fatalf("Result.Size %d, file %d, hash offset %d", res.Size, len(b), offset)
	}
	// Without verity the image is the same, padded to 4 KiB.
	p, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, b[:offset]) {
		t.Error("the image without verity differs from the verity image's data part")
	}
	if err := verity.Verify(bytes.NewReader(b), offset, res.RootHash); err != nil {
		t.Error(err)
	}
	// verity.Append on the bare image gives the same tree and root hash.
	cp := filepath.Join(t.TempDir(), "copy")
	if err := os.WriteFile(cp, b[:offset], 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := verity.Append(cp)
	if err != nil {
		t.Fatal(err)
	}
	if root != res.RootHash {
		t.Errorf("verity.Append's root %s, the writer's %s", root, res.RootHash)
	}
	if c, _ := os.ReadFile(cp); !bytes.Equal(c, b) {
		t.Error("verity.Append's tree differs from the writer's")
	}

	if _, err := exec.LookPath("veritysetup"); err != nil {
		t.Skip("veritysetup is not installed")
	}
	veritysetup := func(path string) error {
		out, err := exec.Command("veritysetup", "verify", path, path, res.RootHash,
			"--hash-offset="+strconv.FormatInt(offset, 10)).CombinedOutput()
		if err != nil {
			t.Logf("veritysetup verify %s: %v\n%s", filepath.Base(path), err, out)
		}
		return err
	}
	if err := veritysetup(img); err != nil {
		t.Fatal("veritysetup rejects the image")
	}
	bad := bytes.Clone(b)
	bad[offset/2] ^= 0x40
	badPath := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if veritysetup(badPath) == nil {
		t.Error("veritysetup accepts the image with a flipped byte")
	}
}
