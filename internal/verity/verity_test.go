package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func needVeritysetup(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("veritysetup")
	if err != nil {
		t.Skip("needs veritysetup (apt-get install cryptsetup-bin)")
	}
	return bin
}

func randomFile(t *testing.T, size int64, seed uint64) string {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMatchesVeritysetup compares Append with veritysetup format on the
// same data and salt, across the sizes where the tree's shape changes: a
// single block (no levels), one hash block, two hash blocks, three levels.
func TestMatchesVeritysetup(t *testing.T) {
	bin := needVeritysetup(t)
	for _, blocks := range []int64{1, 2, 128, 129, 300, 128*128 + 1} {
		t.Run(strconv.FormatInt(blocks, 10), func(t *testing.T) {
			size := blocks * BlockSize
			ours := randomFile(t, size, uint64(blocks))
			theirs := filepath.Join(t.TempDir(), "img")
			data, _ := os.ReadFile(ours)
			if err := os.WriteFile(theirs, data, 0o644); err != nil {
				t.Fatal(err)
			}
			root, err := Append(ours)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "format", theirs, theirs, "--hash-offset", strconv.FormatInt(size, 10),
				"--salt", hex.EncodeToString(Salt), "--uuid", "00000000-0000-4000-8000-000000000000").CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup format: %v: %s", err, out)
			}
			if !strings.Contains(string(out), root) {
				t.Fatalf("root hash %s, veritysetup printed:\n%s", root, out)
			}
			a, _ := os.ReadFile(ours)
			b, _ := os.ReadFile(theirs)
			if int64(len(a)) != size+HashAreaSize(blocks) {
				t.Fatalf("appended %d bytes, HashAreaSize says %d", int64(len(a))-size, HashAreaSize(blocks))
			}
			// Everything but the superblock's UUID is veritysetup's bytes.
			copy(a[size+16:size+32], b[size+16:size+32])
			if !bytes.Equal(a, b) {
				t.Fatalf("image differs from veritysetup's (%d vs %d bytes)", len(a), len(b))
			}
			if out, err := exec.Command(bin, "verify", ours, ours, root, "--hash-offset", strconv.FormatInt(size, 10)).CombinedOutput(); err != nil {
				t.Fatalf("veritysetup verify: %v: %s", err, out)
			}
			f, _ := os.Open(ours)
			defer f.Close()
			if err := Verify(f, size, root); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFlippedByte corrupts a data block and then a hash block: both
// veritysetup and Verify must refuse the image.
func TestFlippedByte(t *testing.T) {
	bin := needVeritysetup(t)
	const size = 300 * BlockSize
	p := randomFile(t, size-100, 3) // not block aligned: Append pads
	root, err := Append(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5000, size + BlockSize + 40} {
		b, _ := os.ReadFile(p)
		b[off] ^= 1
		bad := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(bad, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "verify", bad, bad, root, "--hash-offset", strconv.Itoa(size)).CombinedOutput(); err == nil {
			t.Errorf("byte %d flipped: veritysetup verify accepted it: %s", off, out)
		}
		f, _ := os.Open(bad)
		if err := Verify(f, size, root); !errors.Is(err, ErrMismatch) {
			t.Errorf("byte %d flipped: Verify = %v", off, err)
		}
		f.Close()
	}
}

// TestStreamingAndSetBlock: hashing in odd-sized writes and patching the
// first block afterwards, as the squashfs writer does, gives Append's tree.
func TestStreamingAndSetBlock(t *testing.T) {
	p := randomFile(t, 70*BlockSize, 9)
	data, _ := os.ReadFile(p)
	want, err := Append(p)
	if err != nil {
		t.Fatal(err)
	}
	wantFile, _ := os.ReadFile(p)

	tr := NewTree(nil)
	first := bytes.Repeat([]byte{0xee}, BlockSize)
	tr.Write(first)
	for rest := data[BlockSize:]; len(rest) > 0; {
		n := min(len(rest), 1+len(rest)%9973)
		tr.Write(rest[:n])
		rest = rest[n:]
	}
	if err := tr.SetBlock(0, data[:BlockSize]); err != nil {
		t.Fatal(err)
	}
	var area bytes.Buffer
	root, err := tr.Finish(&area)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(root) != want || !bytes.Equal(area.Bytes(), wantFile[len(data):]) {
		t.Fatalf("streamed tree differs: root %x, want %s", root, want)
	}
	if err := tr.SetBlock(70, data[:BlockSize]); err == nil {
		t.Fatal("SetBlock past the end was accepted")
	}
}

func TestRootHashAnnotations(t *testing.T) {
	if h, ok := RootHash(map[string]string{OldRootHashAnnotation: "ab"}); !ok || h != "ab" {
		t.Fatal("old annotation not read")
	}
	if h, _ := RootHash(map[string]string{OldRootHashAnnotation: "ab", RootHashAnnotation: "cd"}); h != "cd" {
		t.Fatal("current annotation does not win")
	}
	if _, ok := RootHash(nil); ok {
		t.Fatal("root hash without annotations")
	}
}

// AppendHashing writes the file it leaves, byte for byte, to its hash.
func TestAppendHashing(t *testing.T) {
	p := randomFile(t, 10*BlockSize+17, 5)
	h := sha256.New()
	if _, err := AppendHashing(p, h); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := sha256.Sum256(b); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the hash is not the file's")
	}
}
