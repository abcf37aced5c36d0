package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/testlayout"
	"github.com/strata-build/strata/internal/verity"
)

// stackerSquashfsLayer makes a squashfs layer as stacker does: mksquashfs
// of a rootfs folder, then `veritysetup format` of the padded image into
// itself (random salt and UUID, as libcryptsetup picks them). It returns
// the blob and the root hash veritysetup printed.
func stackerSquashfsLayer(t *testing.T) ([]byte, string) {
	t.Helper()
	for _, tool := range []string{"mksquashfs", "veritysetup", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (go run mage.go deps)", tool)
		}
	}
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bb, err := exec.LookPath("busybox")
	must(err)
	data, err := os.ReadFile(bb)
	must(err)
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755))
	for _, l := range []string{"sh", "cat", "ls"} {
		must(os.Symlink("busybox", filepath.Join(root, "bin", l)))
	}
	must(os.WriteFile(filepath.Join(root, "sq"), []byte("sq\n"), 0o644))
	blob := filepath.Join(t.TempDir(), "layer.squashfs")
	if out, err := exec.Command("mksquashfs", root, blob, "-comp", "zstd", "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	fi, err := os.Stat(blob)
	must(err)
	out, err := exec.Command("veritysetup", "format", blob, blob, "--hash-offset", strconv.FormatInt(fi.Size(), 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup format: %v: %s", err, out)
	}
	m := regexp.MustCompile(`Root hash:\s+([0-9a-f]{64})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no root hash in veritysetup's output:\n%s", out)
	}
	b, err := os.ReadFile(blob)
	must(err)
	return b, string(m[1])
}

// TestStackerSquashfsBase builds tar, squashfs and erofs images on a base
// whose layer stacker could have written: a squashfs with a tree made by
// veritysetup, its root hash under stacker's old annotation name. strata's
// own layers on it pass veritysetup verify with their annotation.
func TestStackerSquashfsBase(t *testing.T) {
	blob, root := stackerSquashfsLayer(t)
	layout := filepath.Join(t.TempDir(), "stacker-oci")
	d := digest.FromBytes(blob)
	testlayout.Write(t, layout, "stackerbase", func(m *v1.Manifest, _ *v1.Descriptor) {
		m.Layers[0].Annotations = map[string]string{verity.OldRootHashAnnotation: root}
	}, testlayout.Layer{Blob: blob, MediaType: "application/vnd.stacker.image.layer.squashfs+zstd", DiffID: d})

	on := newBuild(t, "testdata/storage/onbase")
	env := []string{"STRATA_TEST_BASE_LAYOUT=" + layout, "STRATA_TEST_BASE_TAG=stackerbase"}
	out := on.must(env, "build")
	for _, tag := range []string{"ontar", "onsq", "onero"} {
		g := filepath.Join(t.TempDir(), "f")
		on.must(env, "grab", tag+":/"+tag, g)
		if data, _ := os.ReadFile(g); string(data) != "sq\n" {
			t.Errorf("%s on stacker's squashfs base: /%s = %q\n%s", tag, tag, data, out)
		}
		m, _ := image(t, on.layout, tag)
		if len(m.Layers) != 2 || m.Layers[0].Digest != d || m.Layers[0].Annotations[verity.OldRootHashAnnotation] != root {
			t.Errorf("%s: the base layer is not stacker's as published: %+v", tag, m.Layers[0])
		}
		if tag != "ontar" {
			verityVerify(t, on.layout, m.Layers[1])
		}
	}
	// The base layer, as the image carries it, passes veritysetup with
	// its old annotation, which verity.RootHash reads.
	m, _ := image(t, on.layout, "onsq")
	verityVerify(t, on.layout, m.Layers[0])
}
