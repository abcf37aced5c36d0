package sandbox_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-build/strata/internal/testuser"
	"github.com/strata-build/strata/runtime/sandbox"
)

const (
	rootlessUser  = "stratatest"
	rootlessDirEV = "STRATA_ROOTLESS_DIR"
)

// subStart is the first subordinate id of the test user in file (useradd
// may have allocated a range already; otherwise we add 200000:65536).
func subStart(t testing.TB, file string) uint32 {
	t.Helper()
	b, _ := os.ReadFile(file)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) == 3 && f[0] == rootlessUser {
			n, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(n)
		}
	}
	t.Fatalf("%s has no range for %s", file, rootlessUser)
	return 0
}

// setupRootlessUser creates the test user and its subordinate ids, once,
// and returns its uid.
func setupRootlessUser(t *testing.T) int {
	t.Helper()
	for _, tool := range []string{"newuidmap", "newgidmap", "runuser", "useradd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	uid := testuser.Ensure(t, rootlessUser, false)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, _ := os.ReadFile(f)
		if strings.Contains("\n"+string(b), "\n"+rootlessUser+":") {
			continue
		}
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteString(rootlessUser + ":200000:65536\n")
		fh.Close()
	}
	return uid
}

// TestRootless re-runs this test binary as an unprivileged user (see
// TestRootlessInner) and checks from the host what its build left.
func TestRootless(t *testing.T) {
	requireRoot(t)
	if os.Getenv(rootlessDirEV) != "" {
		t.Skip("inner run")
	}
	busybox(t)
	uid := setupRootlessUser(t)
	base, err := os.MkdirTemp("", "strata-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "sandbox.test")
	if err := os.WriteFile(bin, mustRead(t, self), 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(base, "w")
	os.Mkdir(work, 0o755)
	if out, err := exec.Command("chown", rootlessUser+":", work).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	args := []string{"-u", rootlessUser, "--", bin, "-test.run", "^(TestRootlessInner|TestCompareUnshare|BenchmarkStepTrue)$", "-test.v"}
	if os.Getenv("STRATA_BENCH") != "" {
		args = append(args, "-test.bench", "^BenchmarkStepTrue$")
	}
	cmd := exec.Command("runuser", args...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), rootlessDirEV+"="+work)
	out, err := cmd.CombinedOutput()
	t.Logf("inner run as %s:\n%s", rootlessUser, out)
	if err != nil {
		t.Fatalf("inner run: %v", err)
	}
	upper := filepath.Join(work, "upper")
	uStart, gStart := subStart(t, "/etc/subuid"), subStart(t, "/etc/subgid")
	owner := func(rel string) (uint32, uint32) {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(upper, rel), &st); err != nil {
			t.Fatal(err)
		}
		return st.Uid, st.Gid
	}
	if u, g := owner("owned"); u != uStart+1234 || g != gStart+1234 {
		t.Errorf("chown 1234:1234 in the container shows as %d:%d on the host, want %d:%d", u, g, uStart+1234, gStart+1234)
	}
	if u, g := owner("copied"); u != uStart+1234 || g != gStart+1234 {
		t.Errorf("import with UID 1234 shows as %d:%d on the host", u, g)
	}
	if u, _ := owner("made"); int(u) != uid {
		t.Errorf("file made by container root is owned by %d, want the user (%d)", u, uid)
	}
	assertWhiteout(t, filepath.Join(upper, "bin/vi"))
	noMounts(t, base)
}

func itoa(u uint32) string { return strconv.FormatUint(uint64(u), 10) }

// TestRootlessInner is the unprivileged half of TestRootless.
func TestRootlessInner(t *testing.T) {
	dir := os.Getenv(rootlessDirEV)
	if dir == "" {
		t.Skip("run by TestRootless")
	}
	if os.Geteuid() == 0 {
		t.Fatal("inner run is root")
	}
	e := rootlessEnv(t, dir)
	cu, cg := rootlessMaps(t)
	if err := sandbox.CheckOverlay(context.Background(), cu, cg); err != nil {
		t.Errorf("CheckOverlay(rootless): %v", err)
	}
	src := filepath.Join(dir, "import")
	os.WriteFile(src, []byte("imported"), 0o644)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, ".git"), 0o755)
	os.WriteFile(filepath.Join(tree, "main"), nil, 0o644)
	os.WriteFile(filepath.Join(tree, "a.log"), nil, 0o644)
	id, mode := 1234, uint32(0o600)
	spec := e.spec(
		script(`
echo uid=$(id -u) host=$(hostname) pids=$(ls /proc | grep -c '^[0-9]')
touch /owned && chown 1234:1234 /owned
rm /bin/vi
echo hi > /made
echo s > /secret && chown 1234:1234 /secret && chmod 600 /secret
test -c /dev/null && echo devnull=ok
awk '$2=="/dev/pts"{print "pts=" $3}' /proc/mounts
test -s /etc/resolv.conf && echo resolv=ok
echo sec=$(cat /run/secrets/tok) imp=$(cat /.strata/imports/import)
echo tree=$(ls -A /.strata/imports/tree)
mount -o remount,bind,rw /.strata/imports/import 2>/dev/null && echo imp-remounted
umount /.strata/imports/import 2>/dev/null && echo imp-unmounted
echo changed > /.strata/imports/import 2>/dev/null && echo imp-written
true
`),
		sandbox.Step{Copy: &sandbox.Copy{Source: src, Dest: "/copied", UID: &id, GID: &id, Mode: &mode}},
		sandbox.Step{Copy: &sandbox.Copy{Source: tree, Dest: "/tree", Exclude: []string{"*.log"}}},
		script("cat /copied; echo; ls -ln /copied | awk '{print $3}'"),
		script(escapeScript(dir)),
	)
	spec.UIDMap, spec.GIDMap = rootlessMaps(t)
	spec.Secrets = []sandbox.Secret{{Name: "tok", Value: []byte("rootless-secret")}}
	spec.Finish = &sandbox.FinishSpec{Name: "test-list-upper"}
	out, errOut, res, err := run(t, spec)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"uid=0 host=testimg", "devnull=ok", "pts=devpts", "resolv=ok", "sec=rootless-secret imp=imported", "tree=main\n", "imported\n1234\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	assertNoEscape(t, dir, out+errOut)
	for _, bad := range []string{"imp-remounted", "imp-unmounted", "imp-written"} {
		if strings.Contains(out, bad) {
			t.Errorf("a step got write access to an import: %s", bad)
		}
	}
	if b, _ := os.ReadFile(src); string(b) != "imported" {
		t.Errorf("the imported host file now holds %q", b)
	}
	var fin struct{ Secret string }
	json.Unmarshal(res, &fin)
	if fin.Secret != "s\n" {
		t.Errorf("finisher could not read a 0600 file of uid 1234: %s", res)
	}
}

// rootlessMaps maps container root to the user and container id N >= 1 to
// start+N of the user's subordinate range, as strata's runtime does.
func rootlessMaps(t testing.TB) ([]sandbox.IDMap, []sandbox.IDMap) {
	u, g := subStart(t, "/etc/subuid"), subStart(t, "/etc/subgid")
	return []sandbox.IDMap{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}, {ContainerID: 1, HostID: u + 1, Size: 65535}},
		[]sandbox.IDMap{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}, {ContainerID: 1, HostID: g + 1, Size: 65535}}
}

// rootlessEnv makes a sandbox's folders under dir with its own busybox
// lower (the shared one belongs to root).
func rootlessEnv(t testing.TB, dir string) *env {
	e := &env{dir: dir}
	lower := filepath.Join(dir, "lower")
	if _, err := os.Stat(lower); err != nil {
		if err := makeBusybox(lower); err != nil {
			t.Fatal(err)
		}
	}
	e.lowers = []string{lower}
	e.upper, e.work, e.rootfs = filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{e.upper, e.work, e.rootfs} {
		os.Mkdir(d, 0o755)
	}
	return e
}
