package layer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
)

// TestUnpackSquashfsStopsAtFreeSpaceFloor unpacks a squashfs whose files
// (70 MiB of one letter, a few KiB compressed; not zeros, which unsquashfs
// would write sparse) would leave less than the floor free on a 64 MiB
// tmpfs: it must be refused before anything is written.
func TestUnpackSquashfsStopsAtFreeSpaceFloor(t *testing.T) {
	needRoot(t)
	for _, bin := range []string{"mksquashfs", "unsquashfs"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "letters"), bytes.Repeat([]byte("a"), 70<<20), 0o644))
	blob := filepath.Join(t.TempDir(), "layer.sqfs")
	if out, err := exec.Command("mksquashfs", src, blob, "-quiet", "-noappend", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	defer unix.Unmount(small, unix.MNT_DETACH)
	dest := filepath.Join(small, "dest")
	must(t, os.Mkdir(dest, 0o755))
	err := Unpack(context.Background(), blob, string(MediaType(layertype.Squashfs)), dest, UnpackOptions{MinFree: 8 << 20})
	if !errors.Is(err, ErrFreeSpace) {
		t.Fatalf("err = %v; want ErrFreeSpace", err)
	}
	if ents, _ := os.ReadDir(dest); len(ents) > 0 {
		t.Errorf("the refused unpack wrote %s", ents[0].Name())
	}
}
