package storage

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
)

// TestMergedFS: the view reads the overlay as the kernel would show it:
// the top layer wins, whiteouts hide, opaque folders hide what is below
// them, links resolve inside the image, and fs.WalkDir walks it.
func TestMergedFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for whiteouts and trusted.overlay.opaque")
	}
	bottom, top := t.TempDir(), t.TempDir()
	write := func(dir, rel, data string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bottom, "etc/a", "old a")
	write(bottom, "etc/gone", "deleted above")
	write(bottom, "opq/hidden", "below an opaque folder")
	write(bottom, "keep/low", "low")
	write(top, "etc/a", "new a")
	write(top, "opq/shown", "in the opaque folder")
	write(top, "keep/high", "high")
	if err := overlayfs.MakeWhiteout(filepath.Join(top, "etc/gone")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(top, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/keep/low", filepath.Join(top, "link")); err != nil {
		t.Fatal(err)
	}
	fsys := MergedFS([]string{bottom, top})

	for name, want := range map[string]string{"etc/a": "new a", "keep/low": "low", "keep/high": "high", "link": "low", "opq/shown": "in the opaque folder"} {
		b, err := fs.ReadFile(fsys, name)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"etc/gone", "opq/hidden", "nope"} {
		if _, err := fs.ReadFile(fsys, name); !os.IsNotExist(err) {
			t.Errorf("%s: %v; want not found", name, err)
		}
	}
	var walked []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		walked = append(walked, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "etc", "etc/a", "keep", "keep/high", "keep/low", "link", "opq", "opq/shown"}
	if !reflect.DeepEqual(walked, want) {
		t.Errorf("walked %q, want %q", walked, want)
	}
}
