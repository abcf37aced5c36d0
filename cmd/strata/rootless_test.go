package main_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-build/strata/internal/testuser"
)

// The users of the rootless suite. stratatest runs the contract tests of
// contract_test.go without root; stratanoids starts without subordinate ids
// (a system user, which useradd gives none) and gets them from strata
// unpriv-setup during the test.
const (
	rootlessUser = "stratatest"
	noSubIDsUser = "stratanoids"
)

// rootlessScratch is a world-readable copy of what an unprivileged user
// needs to run strata on the contract definitions: the module source (the
// clone may live where other users cannot reach), the strata binary, this
// test binary, and a driver cache filled as root, so that the user runs the
// real CLI without needing a Go build cache or module cache of its own.
type rootlessScratch struct {
	dir, src, strata, testBin string
	env                       []string // the environment of every strata run, root or not
}

// driverEnvKeys change the driver's cache key (internal/driver/hash.go):
// root's compile and the user's lookup must see the same values.
var driverEnvKeys = []string{"PATH", "GOFLAGS", "CGO_ENABLED", "GOEXPERIMENT", "GOWORK", "GOROOT", "GOTOOLCHAIN", "GOENV", "GOAMD64"}

func newRootlessScratch(t *testing.T) *rootlessScratch {
	t.Helper()
	dir, err := os.MkdirTemp("", "strata-rootless-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &rootlessScratch{dir: dir, src: filepath.Join(dir, "src"), strata: filepath.Join(dir, "strata"), testBin: filepath.Join(dir, "cmd.test")}
	if err := copyTree(repo(t, "."), s.src); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{strataBin: s.strata, self: s.testBin} {
		if err := copyFile(src, dst, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"home", "cache", "config"} {
		os.Mkdir(filepath.Join(dir, d), 0o777)
	}
	s.env = []string{"HOME=" + filepath.Join(dir, "home"), "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	for _, k := range driverEnvKeys {
		if v, ok := os.LookupEnv(k); ok {
			s.env = append(s.env, k+"="+v)
		}
	}
	// Compile the driver as root, with root's Go caches (which do not
	// change the driver's key).
	goEnv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	caches := strings.Fields(string(goEnv))
	list := exec.Command(s.strata, "list")
	list.Dir = filepath.Join(s.src, "cmd/strata/testdata/contract")
	list.Env = append(append([]string{}, s.env...), "GOCACHE="+caches[0], "GOMODCACHE="+caches[1])
	if out, err := list.CombinedOutput(); err != nil {
		t.Fatalf("compile the contract driver: %v\n%s", err, out)
	}
	// Everyone may read it all; the caches and home may be written (strata
	// refreshes cache entries it uses).
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm() | 0o444
		if d.IsDir() || fi.Mode()&0o100 != 0 {
			mode |= 0o111
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && (rel == "." || strings.HasPrefix(rel, "cache") || strings.HasPrefix(rel, "home") || strings.HasPrefix(rel, "config")) {
			mode |= 0o777
			if rel == "." {
				mode = 0o755
			}
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyTree copies the module source: everything but VCS data, build
// outputs and stores.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".strata" || rel == "bin" || d.Name() == "oci" && (rel == "oci" || strings.HasPrefix(rel, "examples"))) {
			return filepath.SkipDir
		}
		target := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, fi.Mode().Perm())
		}
		return nil
	})
}

func copyFile(from, to string, mode fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// asUser runs a command as user in dir with the scratch environment plus
// extra, and returns its combined output and exit status.
func (s *rootlessScratch) asUser(t *testing.T, user, dir string, extra []string, args ...string) (string, int) {
	t.Helper()
	full := append([]string{"-u", user, "--", "env", "-i"}, s.env...)
	full = append(append(full, extra...), args...)
	cmd := exec.Command("runuser", full...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return buf.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("runuser %v: %v", args, err)
	}
	return buf.String(), 0
}

// dropSubIDs removes user's lines from /etc/subuid and /etc/subgid.
func dropSubIDs(t *testing.T, user string) {
	t.Helper()
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if !strings.HasPrefix(line, user+":") && line != "" {
				keep = append(keep, line)
			}
		}
		if err := os.WriteFile(f, []byte(strings.Join(keep, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func needRootlessTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sets up users as root; it runs the contract tests as the unprivileged user itself")
	}
	for _, tool := range []string{"runuser", "useradd", "newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (go run mage.go deps installs it)", tool)
		}
	}
}

// TestRootlessSuite sets up stratatest with the real strata unpriv-setup
// and runs the contract tests through the real CLI as that user.
func TestRootlessSuite(t *testing.T) {
	needRootlessTools(t)
	testuser.Ensure(t, rootlessUser, false)
	if out, code := strata(t, ".", "unpriv-setup", "--user", rootlessUser, "--store", ""); code != 0 {
		t.Fatalf("strata unpriv-setup --user %s exited %d:\n%s", rootlessUser, code, out)
	}
	s := newRootlessScratch(t)
	out, code := s.asUser(t, rootlessUser, filepath.Join(s.src, "cmd/strata"), []string{"STRATA_TEST_BIN=" + s.strata},
		s.testBin, "-test.run", "^(TestContract|TestShellOnFailure|TestInterrupt|TestCheck)$", "-test.v", "-test.count=1")
	t.Logf("contract tests as %s:\n%s", rootlessUser, out)
	if code != 0 {
		t.Fatalf("the contract tests failed as %s (exit %d)", rootlessUser, code)
	}
	for _, name := range []string{"TestContract", "TestShellOnFailure", "TestInterrupt", "TestCheck"} {
		if !strings.Contains(out, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass as %s", name, rootlessUser)
		}
	}
}

// TestUnprivSetupFromNothing: strata check as a user without subordinate
// ids fails and names strata unpriv-setup; after unpriv-setup (run twice:
// it is idempotent) check passes and a build as that user writes a layer
// whose owners are the container's.
func TestUnprivSetupFromNothing(t *testing.T) {
	needRootlessTools(t)
	testuser.Ensure(t, noSubIDsUser, true)
	dropSubIDs(t, noSubIDsUser)
	s := newRootlessScratch(t)
	defs := filepath.Join(s.src, "cmd/strata/testdata/contract")
	work := filepath.Join(s.dir, "noids")
	os.Mkdir(work, 0o755)
	if out, err := exec.Command("chown", noSubIDsUser+":", work).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	store, layout := filepath.Join(work, "store"), filepath.Join(work, "oci")

	out, code := s.asUser(t, noSubIDsUser, defs, nil, s.strata, "check", "--store", store)
	if code == 0 || !strings.Contains(out, "FAILED  subordinate ids: ") || !strings.Contains(out, "strata unpriv-setup --user "+noSubIDsUser) {
		t.Errorf("check without subordinate ids: exit %d:\n%s", code, out)
	}
	out, code = s.asUser(t, noSubIDsUser, defs, nil, s.strata, "build", "--store", store, "--layout", layout, "owners")
	if code == 0 || !strings.Contains(out, "strata unpriv-setup") || strings.Contains(out, "building") {
		t.Errorf("build without subordinate ids: exit %d:\n%s", code, out)
	}

	for i := 0; i < 2; i++ {
		out := mustStrata(t, ".", "unpriv-setup", "--user", noSubIDsUser, "--store", store)
		t.Logf("unpriv-setup (%d):\n%s", i+1, out)
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, _ := os.ReadFile(f)
		if n := strings.Count("\n"+string(b), "\n"+noSubIDsUser+":"); n != 1 {
			t.Errorf("%s has %d lines for %s, want 1:\n%s", f, n, noSubIDsUser, b)
		}
	}
	out, code = s.asUser(t, noSubIDsUser, defs, nil, s.strata, "check", "--store", store)
	if code != 0 || !strings.Contains(out, "ok      subordinate ids: ") {
		t.Errorf("check after unpriv-setup: exit %d:\n%s", code, out)
	}
	out, code = s.asUser(t, noSubIDsUser, defs, nil, s.strata, "build", "--store", store, "--layout", layout, "owners")
	if code != 0 {
		t.Fatalf("build as %s after unpriv-setup: exit %d:\n%s", noSubIDsUser, code, out)
	}
	m, _ := image(t, layout, "owners")
	entries := layerEntries(t, layout, m.Layers[len(m.Layers)-1])
	for name, id := range map[string]int{"made": 0, "owned": 1234, "usr/share/strata-test/owned": 1234} {
		if h := entries[name]; h == nil || h.Uid != id || h.Gid != id {
			t.Errorf("%s in the layer: %+v, want owner %d:%d", name, h, id, id)
		}
	}
	if entries["bin/.wh.vi"] == nil {
		t.Error("no whiteout for the deleted bin/vi")
	}
	// strata run shows the owners the layer holds, as strata chroot does,
	// not the unprivileged user's own id (root in the container).
	for _, argv := range [][]string{
		{"run", "--store", store, "--layout", layout, "owners", "--", "stat", "-c", "%u %g", "/owned", "/usr/share/strata-test/owned", "/made"},
		{"chroot", "--store", store, "owners", "--", "stat", "-c", "%u %g", "/owned", "/usr/share/strata-test/owned", "/made"},
	} {
		out, code := s.asUser(t, noSubIDsUser, defs, nil, append([]string{s.strata}, argv...)...)
		if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "1234 1234\n1234 1234\n0 0") {
			t.Errorf("strata %s as %s: exit %d, owners of /owned, /usr/share/strata-test/owned, /made:\n%s\nwant 1234 1234, 1234 1234, 0 0", argv[0], noSubIDsUser, code, out)
		}
	}

	// Squashfs (native writer) and erofs encodings of the same layers,
	// made in the build's user namespace, keep the container's owners and
	// carry trees veritysetup accepts.
	out, code = s.asUser(t, noSubIDsUser, defs, nil, s.strata, "build", "--store", store, "--layout", layout,
		"--layer-type", "tar", "--layer-type", "squashfs", "--layer-type", "erofs", "owners")
	if code != 0 || !strings.Contains(out, "cached (encoded as squashfs, erofs)") {
		t.Fatalf("squashfs and erofs as %s: exit %d:\n%s", noSubIDsUser, code, out)
	}
	for _, tag := range []string{"owners-squashfs", "owners-erofs"} {
		m, _ := image(t, layout, tag)
		top := m.Layers[len(m.Layers)-1]
		verityVerify(t, layout, top)
		mnt := t.TempDir()
		blob := filepath.Join(layout, "blobs", "sha256", top.Digest.Encoded())
		if out, err := exec.Command("mount", "-o", "loop,ro", blob, mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount %s's layer: %v: %s", tag, err, out)
		}
		for _, name := range []string{"owned", "usr/share/strata-test/owned"} {
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(mnt, name), &st); err != nil || st.Uid != 1234 || st.Gid != 1234 {
				t.Errorf("%s: %s owned by %d:%d (%v), want 1234:1234", tag, name, st.Uid, st.Gid, err)
			}
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(mnt, "bin/vi"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: bin/vi is not a whiteout (char 0/0): %+v %v", tag, st, err)
		}
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	}
}
