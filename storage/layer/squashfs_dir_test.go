package layer

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
)

// TestSquashfsDirModeMatchesTarMode checks that an upper dir without
// overlay xattrs, which mksquashfs reads as a folder, gives the image the
// tar stream would: same entries, owners, modes, times, sizes and xattrs;
// and that the native writer gives that image too.
func TestSquashfsDirModeMatchesTarMode(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("needs squashfs-tools")
	}
	up := makeUpper(t)
	must(t, unix.Lremovexattr(filepath.Join(up, "var/opq"), "trusted.overlay.opaque"))
	must(t, unix.Lremovexattr(filepath.Join(up, "var"), "trusted.overlay.origin"))
	if !squashfsDirModeOK(context.Background(), up) {
		t.Fatal("an upper dir without overlay xattrs was not eligible for folder mode")
	}
	opts := WriteOptions{SourceDateEpoch: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), SquashfsWriter: SquashfsMksquashfs}
	dirBlob := filepath.Join(t.TempDir(), "dir.sqfs")
	_, err := Write(context.Background(), up, layertype.Squashfs, dirBlob, opts)
	must(t, err)
	squashfsDirMode = false
	defer func() { squashfsDirMode = true }()
	tarBlob := filepath.Join(t.TempDir(), "tar.sqfs")
	_, err = Write(context.Background(), up, layertype.Squashfs, tarBlob, opts)
	must(t, err)
	list := func(blob string) string {
		out, err := exec.Command("unsquashfs", "-lln", "-xattrs", blob).CombinedOutput()
		if err != nil {
			t.Fatalf("unsquashfs: %v\n%s", err, out)
		}
		return string(out)
	}
	a, b := list(dirBlob), list(tarBlob)
	if a != b {
		t.Errorf("folder mode and tar mode differ:\n--- folder\n%s--- tar\n%s", a, b)
	}
	nativeBlob := filepath.Join(t.TempDir(), "native.sqfs")
	opts.SquashfsWriter = SquashfsNative
	_, err = Write(context.Background(), up, layertype.Squashfs, nativeBlob, opts)
	must(t, err)
	if c := list(nativeBlob); c != a {
		t.Errorf("the native writer and mksquashfs differ:\n--- native\n%s--- mksquashfs\n%s", c, a)
	}
	if !strings.Contains(a, "squashfs-root/owned") {
		t.Errorf("listing lacks files:\n%s", a)
	}
	// Overlay xattrs need the tar stream's translation.
	must(t, unix.Lsetxattr(filepath.Join(up, "var/opq"), "trusted.overlay.opaque", []byte("y"), 0))
	if squashfsDirModeOK(context.Background(), up) {
		t.Error("an opaque dir did not force tar mode")
	}
}
