package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCheckInsideAChroot runs strata check in a bare chroot holding a
// static strata and busybox, as a CI runner's or an sbuild's chroot would
// hold it: with /proc mounted (in a private mount namespace, so that
// nothing outlives the test) and without. The kernel refuses user
// namespaces and mount propagation there, so check must say it is a
// chroot and what works instead, rather than blame the kernel's overlay.
// What it names instead, the same tree made the root by pivot_root in a
// mount namespace of its own, passes every check.
func TestCheckInsideAChroot(t *testing.T) {
	needRoot(t)
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("needs chroot(8)")
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static")
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "dev", "oldroot", "proc", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The /dev/null a chroot's /dev has, so that the sandbox gets as far
	// as it would in a CI runner's chroot.
	if err := unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("busybox", filepath.Join(dir, "bin/sh"))
	// A chroot holds no shared libraries: strata must be static.
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "strata"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	if out, err := exec.Command(chroot, dir, "/bin/busybox", "true").CombinedOutput(); err != nil {
		t.Skipf("chroot cannot be run here: %v\n%s", err, out)
	}

	check := []string{"/strata", "check", "--store", "/tmp/store"}
	inChroot := []string{
		"FAILED  chroot: strata is running inside a chroot (/ is not a mount point): the kernel refuses user namespaces and mount propagation there",
		"pivot_root", "podman, docker, systemd-nspawn",
	}
	type run struct {
		cmd  *exec.Cmd
		code int
		want []string
	}
	cases := map[string]run{
		"without /proc": {exec.Command(chroot, append([]string{dir}, check...)...), 1, inChroot},
	}
	if unshare, err := exec.LookPath("unshare"); err == nil {
		// In a private mount namespace, so that no mount outlives the test.
		private := []string{"--mount", "--propagation", "private", "--fork", "/bin/sh", "-c"}
		cases["with /proc"] = run{exec.Command(unshare, append(append(private,
			`mount -t proc proc "$1/proc" && shift && exec "$@"`, "sh", dir, chroot, dir), check...)...), 1, inChroot}
		// What the message says works instead: the same tree as the
		// root of a mount namespace, by pivot_root.
		cases["pivot_root instead"] = run{exec.Command(unshare, append(append(private,
			`mount --bind "$1" "$1" && mount -t proc proc "$1/proc" && cd "$1" && shift && pivot_root . oldroot &&
			exec /bin/busybox sh -c 'umount -l /oldroot && exec "$@"' sh "$@"`, "sh", dir), check...)...),
			0, []string{"ok      chroot: not inside one", "ok      overlay mount with whiteouts"}}
	} else {
		t.Log("no unshare(1): not trying a chroot with /proc mounted, nor pivot_root")
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := c.cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("strata check exited %d, want %d", code, c.code)
			}
			for _, want := range c.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("the output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(string(out), "use a kernel with overlayfs") {
				t.Errorf("the output blames the kernel's overlay:\n%s", out)
			}
		})
	}
}
