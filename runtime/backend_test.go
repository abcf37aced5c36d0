package runtime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type fakeBackend struct{ addr string }

func (f *fakeBackend) Run(context.Context, *Job) error { return nil }
func (f *fakeBackend) String() string                  { return "fake " + f.addr }
func (f *fakeBackend) Close() error                    { return nil }

func TestOpenBackendAddresses(t *testing.T) {
	RegisterBackend(func(_ context.Context, addr string) (Backend, error) { return &fakeBackend{addr}, nil }, "fake")
	for _, local := range []string{"", "local"} {
		if b, err := OpenBackend(context.Background(), local); b != nil || err != nil {
			t.Errorf("OpenBackend(%q) = %v, %v; want this machine (nil, nil)", local, b, err)
		}
	}
	if b, err := OpenBackend(context.Background(), "fake://x"); err != nil || b.String() != "fake fake://x" {
		t.Errorf("OpenBackend(fake://x) = %v, %v", b, err)
	}
	for addr, want := range map[string]string{
		"buildhost:1234": "want local or an address such as unix://",
		"nope://x":       "unknown scheme nope://, want one of fake://",
	} {
		if _, err := OpenBackend(context.Background(), addr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenBackend(%q) = %v, want an error with %q", addr, err, want)
		}
	}
}

// The mount points a backend's container leaves in the layer go, unless
// the parent has them or a step wrote into them; /.strata always goes.
func TestDropMountPoints(t *testing.T) {
	upper, lower := t.TempDir(), t.TempDir()
	mk := func(root string, dirs []string, files map[string]string) {
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for f, content := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
			if err := os.WriteFile(filepath.Join(root, f), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(lower, []string{"sys", "etc"}, nil)
	mk(upper, []string{"dev", "proc", "sys", "run/secrets", "var/cache/made", ".strata/imports/x", "data"},
		map[string]string{"etc/hosts": "", "etc/resolv.conf": "nameserver 10.0.0.1\n", "var/cache/kept/f": "written by a step", "data/f": "x"})
	if err := dropMountPoints(upper, []string{lower}, []string{"/dev", "/proc", "/sys", "/etc/hosts", "/etc/resolv.conf", "/run/secrets", "/var/cache/made", "/var/cache/kept"}); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(upper, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(upper, p); rel != "." {
			left = append(left, rel)
		}
		return err
	})
	slices.Sort(left)
	// sys is the parent's, so its copy in the layer stays (an empty
	// folder there is a change of its metadata); etc/resolv.conf holds
	// what a step wrote.
	want := []string{"data", "data/f", "etc", "etc/resolv.conf", "sys", "var", "var/cache", "var/cache/kept", "var/cache/kept/f"}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
