package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/runtime/sandbox"
)

// The finisher of TestFinisher. It is registered from this external test
// package's init, which runs after package sandbox's: the child waits for it.
func init() {
	sandbox.RegisterFinisher("test-list-upper", func(ctx context.Context, upper string, arg json.RawMessage) (json.RawMessage, error) {
		var names []string
		err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(upper, p)
			names = append(names, rel)
			return nil
		})
		if err != nil {
			return nil, err
		}
		secret, _ := os.ReadFile(filepath.Join(upper, "secret")) // mode 0600, owned by 1234 when rootless
		host, _ := os.Hostname()
		_, hostView := os.Stat(filepath.Join(upper, "..")) // the host file system is visible
		return json.Marshal(map[string]any{
			"pid": os.Getpid(), "hostname": host, "names": names, "arg": arg,
			"secret": string(secret), "hostView": hostView == nil,
		})
	})
}

// facts runs one step printing KEY=VALUE lines and parses them.
func facts(t *testing.T, e *env, sh string) map[string]string {
	t.Helper()
	out, _ := mustRun(t, e.spec(script(sh)))
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestContainer(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	f := facts(t, e, `
echo hostname=$(hostname)
echo pids=$(ls /proc | grep -c '^[0-9]')
echo mypid=$$
for d in null zero full random urandom tty; do test -c /dev/$d || echo notchar=$d; done
echo ptmx=$(readlink /dev/ptmx) fd=$(readlink /dev/fd) stdin=$(readlink /dev/stdin) stderr=$(readlink /dev/stderr)
echo pts=$(awk '$2=="/dev/pts"{print $3}' /proc/mounts)
echo shm=$(awk '$2=="/dev/shm"{print $3}' /proc/mounts)
echo sys=$(awk '$2=="/sys"{print $3, substr($4,1,2)}' /proc/mounts)
echo root=$(awk '$2=="/"{print $3}' /proc/mounts)
echo resolv=$(md5sum < /etc/resolv.conf)
echo net=$(readlink /proc/self/ns/net)
echo env=$(tr '\0' ' ' < /proc/$$/environ)
echo cwd=$(pwd)
echo zero=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')
: > /dev/null && echo null=ok
echo procsys=$(awk '$2=="/proc/sys"{print substr($4,1,2)}' /proc/mounts)
v=$(cat /proc/sys/kernel/printk_ratelimit)
# The same value back: nothing changes on the host even if this regresses.
echo $v > /proc/sys/kernel/printk_ratelimit 2>/dev/null && echo sysctl=written || echo sysctl=refused
umount /proc/sys 2>/dev/null && echo procsys-umount=done || echo procsys-umount=refused
echo $v > /proc/sys/kernel/printk_ratelimit 2>/dev/null && echo sysctl2=written || echo sysctl2=refused
mount -o remount,bind,rw /sys 2>/dev/null && echo sysrw=done || echo sysrw=refused
mount -o remount,dev /dev 2>/dev/null && echo devremount=done || echo devremount=refused
{ mknod /dev/mem2 c 1 3 && head -c1 /dev/mem2 >/dev/null; } 2>/dev/null && echo devnode=opens || echo devnode=refused
{ mknod /tmp/mem3 c 1 3 && head -c1 /tmp/mem3 >/dev/null; } 2>/dev/null && echo devnode2=opens || echo devnode2=refused
`)
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skip("host has no /etc/resolv.conf")
	}
	want := map[string]string{
		"hostname": "testimg", "pts": "devpts", "shm": "tmpfs", "sys": "sysfs ro", "root": "overlay",
		"ptmx": "pts/ptmx fd=/proc/self/fd stdin=/proc/self/fd/0 stderr=/proc/self/fd/2",
		"net":  hostNet, "env": strings.Join(testEnv, " "), "cwd": "/",
		"zero": "00000000", "null": "ok", "resolv": md5(t, resolv) + " -",
		"procsys": "ro", "sysctl": "refused", "devnode": "refused", "devnode2": "refused",
		"procsys-umount": "refused", "sysctl2": "refused", "sysrw": "refused", "devremount": "refused",
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	if n, _ := strconv.Atoi(f["pids"]); n < 1 || n > 6 {
		t.Errorf("fresh /proc shows %s pids", f["pids"])
	}
	// Small, as in a fresh pid namespace, though not a fixed number: the
	// child's Go threads take pids there too, more of them on a busy
	// machine (CI saw 11).
	if n, _ := strconv.Atoi(f["mypid"]); n < 2 || n > 100 {
		t.Errorf("step pid %s is not small", f["mypid"])
	}
	if f["notchar"] != "" {
		t.Errorf("/dev/%s is not a character device", f["notchar"])
	}
	// Mount points came from the skeleton: the upper dir is empty.
	assertUpper(t, e.upper, nil)
}

func md5(t *testing.T, b []byte) string {
	t.Helper()
	out, err := runHost("md5sum", string(b))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)[0]
}

// assertUpper checks the upper dir holds exactly the given paths.
func assertUpper(t *testing.T, upper string, want []string) {
	t.Helper()
	var got []string
	filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if p != upper {
			rel, _ := filepath.Rel(upper, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("upper dir holds %q, want %q", got, want)
	}
}

func TestScriptEchoesAndStopsAtFirstFailure(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	out, errOut, _, err := run(t, e.spec(script("echo hi\nfalse\necho never")))
	var se *sandbox.StepError
	if !errors.As(err, &se) || se.ExitCode != 1 {
		t.Fatalf("err = %v, want a StepError with exit status 1", err)
	}
	if !strings.Contains(errOut, "+ echo hi") || !strings.Contains(errOut, "+ false") {
		t.Errorf("commands not echoed, stderr:\n%s", errOut)
	}
	if out != "hi\n" {
		t.Errorf("stdout = %q, want only hi", out)
	}
}

func TestShebangRunsAsWritten(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	out, errOut := mustRun(t, e.spec(script("#!/bin/awk -f\nBEGIN { print \"awk ran \" ARGV[0] }\n")))
	if out != "awk ran awk\n" || errOut != "" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}

func TestExitCodeAndWhere(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	spec := e.spec(script("true"), sandbox.Step{Script: "exit 3", Where: "hello.go:14"}, script("echo never"))
	out, _, _, err := run(t, spec)
	var se *sandbox.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StepError", err)
	}
	if se.Index != 1 || se.Where != "hello.go:14" || se.ExitCode != 3 || se.Signal != "" {
		t.Errorf("StepError = %+v", *se)
	}
	if want := "image testimg: step 2 (hello.go:14) failed: exit status 3"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if out != "" {
		t.Errorf("later step ran: %q", out)
	}
	_, _, _, err = run(t, e.spec(sandbox.Step{Script: "kill -SEGV $$", Where: "x.go:2"}))
	if !errors.As(err, &se) || se.Signal != "SIGSEGV" || se.ExitCode != -1 {
		t.Errorf("err = %v, want killed by SIGSEGV", err)
	}
}

// hostProcs returns host processes whose command line contains s.
func hostProcs(s string) []string {
	var found []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) {
			found = append(found, d.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

func TestDaemonDoesNotOutliveStep(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	out, _ := mustRun(t, e.spec(
		script("sleep 1001.5 & (sleep 1002.5 &) ; sleep 1003.5 < /dev/null > /dev/null 2>&1 &"),
		script("pgrep sleep || echo none"),
	))
	if out != "none\n" {
		t.Errorf("daemons still running in the next step: %q", out)
	}
	// Only this test's own sleeps count: other packages' tests (the CLI's
	// contract images sleep 1000.66 and 1000.77) run at the same time.
	for _, own := range []string{"sleep 1001.5", "sleep 1002.5", "sleep 1003.5"} {
		for _, s := range hostProcs(own) {
			t.Errorf("daemon left on the host: %s", s)
		}
	}
}

func TestCancel(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	spec := e.spec(script("sleep 100.25"))
	start := time.Now()
	_, err := sandbox.Run(ctx, spec)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to return after cancel", d)
	}
	if p := hostProcs("sleep\x00100.25"); len(p) > 0 {
		t.Errorf("left running: %v", p)
	}
}

func TestUpperWhiteoutAndNewFile(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	mustRun(t, e.spec(script("rm /bin/vi; echo x > /newfile")))
	assertWhiteout(t, filepath.Join(e.upper, "bin/vi"))
	if b, err := os.ReadFile(filepath.Join(e.upper, "newfile")); err != nil || string(b) != "x\n" {
		t.Errorf("newfile: %q, %v", b, err)
	}
	assertUpper(t, e.upper, []string{"bin", "bin/vi", "newfile"})
}

func assertWhiteout(t *testing.T, p string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatalf("no whiteout: %v", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
		t.Errorf("%s: mode %o rdev %d, want a 0/0 char device", p, st.Mode, st.Rdev)
	}
}

func TestBinds(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	ro, rw := filepath.Join(e.dir, "ro"), filepath.Join(e.dir, "rw")
	os.Mkdir(ro, 0o755)
	os.Mkdir(rw, 0o755)
	os.WriteFile(filepath.Join(ro, "in"), []byte("from host\n"), 0o644)
	file := filepath.Join(e.dir, "single")
	os.WriteFile(file, []byte("single file\n"), 0o644)
	spec := e.spec(script(`
cat /mnt/ro/in /opt/single
touch /mnt/ro/x 2>/dev/null && echo ro-writable
mount -o remount,bind,rw /mnt/ro 2>/dev/null && echo ro-remounted
umount /mnt/ro 2>/dev/null && echo ro-unmounted
touch /mnt/ro/x 2>/dev/null && echo ro-writable
echo written > /mnt/rw/out
grep -q ' /mnt/rw [^ ]* [^ ]*nosuid,nodev' /proc/mounts || echo rw-bind-not-nosuid-nodev
`))
	spec.Binds = []sandbox.Bind{
		{Source: ro, Dest: "/mnt/ro", ReadOnly: true},
		{Source: rw, Dest: "/mnt/rw"},
		{Source: file, Dest: "/opt/single", ReadOnly: true},
	}
	out, _ := mustRun(t, spec)
	if out != "from host\nsingle file\n" {
		t.Errorf("stdout %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(rw, "out")); string(b) != "written\n" {
		t.Errorf("rw bind: host sees %q", b)
	}
	assertUpper(t, e.upper, nil)
}

func TestCopy(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "sub/empty"), 0o750)
	os.WriteFile(filepath.Join(src, "sub/data"), []byte("data"), 0o640)
	os.Symlink("sub/data", filepath.Join(src, "link"))
	os.Symlink("/absolute/dangling", filepath.Join(src, "dangling"))
	file := filepath.Join(e.dir, "conf")
	os.WriteFile(file, []byte("conf"), 0o644)
	mode, id := uint32(0o600), 1234
	spec := e.spec(
		sandbox.Step{Copy: &sandbox.Copy{Source: file, Dest: "/etc/app.conf", Mode: &mode, UID: &id, GID: &id}, Where: "c.go:1"},
		sandbox.Step{Copy: &sandbox.Copy{Source: src, Dest: "/srv/tree"}, Where: "c.go:2"},
		sandbox.Step{Copy: &sandbox.Copy{Source: file, Dest: "/etc/"}, Where: "c.go:3"},
		script("cat /srv/tree/link; ls -ln /etc/app.conf | awk '{print \" \" $1, $3, $4}'"),
	)
	out, _ := mustRun(t, spec)
	if out != "data -rw------- 1234 1234\n" {
		t.Errorf("stdout %q", out)
	}
	check := func(rel string, mode fs.FileMode, uid int) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(e.upper, rel))
		if err != nil {
			t.Error(err)
			return
		}
		if fi.Mode() != mode || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
			t.Errorf("%s: %v uid %d, want %v uid %d", rel, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, mode, uid)
		}
	}
	check("etc/app.conf", 0o600, 1234)
	check("etc/conf", 0o644, 0)
	check("srv/tree/sub", fs.ModeDir|0o750, 0)
	check("srv/tree/sub/empty", fs.ModeDir|0o750, 0)
	check("srv/tree/sub/data", 0o640, 0)
	check("srv/tree/link", fs.ModeSymlink|0o777, 0)
	if l, _ := os.Readlink(filepath.Join(e.upper, "srv/tree/dangling")); l != "/absolute/dangling" {
		t.Errorf("dangling symlink copied as %q", l)
	}
	_, _, _, err := run(t, e.spec(sandbox.Step{Copy: &sandbox.Copy{Source: filepath.Join(e.dir, "missing"), Dest: "/x"}, Where: "c.go:9"}))
	if err == nil || !strings.Contains(err.Error(), "step 1 (c.go:9)") || !strings.Contains(err.Error(), "testimg") {
		t.Errorf("missing source: err = %v", err)
	}
}

// A copy's Mode is taken as chmod(2) takes it: set-id and sticky bits
// included, set after the chown that would clear them; a source's own
// set-id and sticky bits are kept.
func TestCopySpecialModes(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	file := filepath.Join(e.dir, "tool")
	os.WriteFile(file, []byte("x"), 0o644)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "shared"), 0o755)
	os.Chmod(filepath.Join(src, "shared"), 0o777|fs.ModeSticky)
	os.WriteFile(filepath.Join(src, "sgid"), nil, 0o755)
	os.Chmod(filepath.Join(src, "sgid"), 0o755|fs.ModeSetgid)
	suid, sticky, id := uint32(0o4755), uint32(0o1777), 1234
	mustRun(t, e.spec(
		sandbox.Step{Copy: &sandbox.Copy{Source: file, Dest: "/usr/bin/tool", Mode: &suid, UID: &id, GID: &id}, Where: "c.go:1"},
		sandbox.Step{Copy: &sandbox.Copy{Source: src, Dest: "/srv", Mode: &sticky}, Where: "c.go:2"},
	))
	for rel, want := range map[string]fs.FileMode{
		"usr/bin/tool": 0o755 | fs.ModeSetuid,
		"srv":          fs.ModeDir | 0o777 | fs.ModeSticky,
		"srv/shared":   fs.ModeDir | 0o777 | fs.ModeSticky,
		"srv/sgid":     0o755 | fs.ModeSetgid,
	} {
		if fi, err := os.Lstat(filepath.Join(e.upper, rel)); err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), want)
		}
	}
}

func TestFinisher(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	spec := e.spec(script("echo s > /secret; chmod 600 /secret; rm /bin/vi"))
	spec.Finish = &sandbox.FinishSpec{Name: "test-list-upper", Arg: json.RawMessage(`{"k":1}`)}
	_, _, res, err := run(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Pid      int
		Hostname string
		Names    []string
		Arg      json.RawMessage
		Secret   string
		HostView bool
	}
	if err := json.Unmarshal(res, &got); err != nil {
		t.Fatalf("%s: %v", res, err)
	}
	if got.Pid != 1 || got.Hostname != "testimg" || string(got.Arg) != `{"k":1}` || got.Secret != "s\n" || !got.HostView {
		t.Errorf("finisher result %s", res)
	}
	if strings.Join(got.Names, " ") != ". bin bin/vi secret" {
		t.Errorf("finisher saw %q", got.Names)
	}
	spec.Finish = &sandbox.FinishSpec{Name: "nope"}
	if _, err := sandbox.Run(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unregistered finisher: %v", err)
	}
}

func TestManyLowers(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	const n = 60
	var lowers []string
	for i := 0; i < n; i++ {
		// Long names, so that the option string would not fit a page.
		l := filepath.Join(e.dir, fmt.Sprintf("layer-%02d-%s", i, strings.Repeat("x", 64)))
		os.MkdirAll(filepath.Join(l, "layers"), 0o755)
		os.WriteFile(filepath.Join(l, "layers", strconv.Itoa(i)), nil, 0o644)
		os.WriteFile(filepath.Join(l, "which"), []byte(strconv.Itoa(i)), 0o644)
		lowers = append(lowers, l)
	}
	e.lowers = append(lowers, e.lowers...)
	out, _ := mustRun(t, e.spec(script("ls /layers | wc -l; cat /which; echo")))
	if out != "60\n0\n" {
		t.Errorf("stdout %q, want 60 layers and the top one first", out)
	}
}

func TestScratch(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	e.lowers = nil
	src := filepath.Join(e.dir, "bb")
	os.WriteFile(src, mustRead(t, "/bin/busybox"), 0o755)
	mustRun(t, e.spec(sandbox.Step{Copy: &sandbox.Copy{Source: src, Dest: "/bin/busybox"}}))
	if _, err := os.Stat(filepath.Join(e.upper, "bin/busybox")); err != nil {
		t.Error(err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkDirAndInteractiveStdin(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	spec := e.spec(script("pwd"), script("cat"))
	spec.WorkDir = "/work/dir"
	spec.Interactive = true
	spec.Stdin = strings.NewReader("from stdin\n")
	out, _ := mustRun(t, spec)
	if out != "/work/dir\nfrom stdin\n" {
		t.Errorf("stdout %q", out)
	}
}

// A mount point the image hides (a whiteout over the skeleton's
// /etc/resolv.conf) is created in the merged view and removed afterwards.
func TestHiddenMountPointIsCleanedUp(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	top := filepath.Join(e.dir, "top")
	os.MkdirAll(filepath.Join(top, "etc"), 0o755)
	if err := syscall.Mknod(filepath.Join(top, "etc/resolv.conf"), syscall.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	e.lowers = append([]string{top}, e.lowers...)
	out, _ := mustRun(t, e.spec(script("test -s /etc/resolv.conf && echo mounted; echo > /etc/other")))
	if out != "mounted\n" {
		t.Errorf("stdout %q", out)
	}
	assertUpper(t, e.upper, []string{"etc", "etc/other"})
}

func TestCheckOverlay(t *testing.T) {
	requireRoot(t)
	if err := sandbox.CheckOverlay(context.Background(), nil, nil); err != nil {
		t.Errorf("as root: %v", err)
	}
	// Root can check the rootless path with an identity map.
	id := []sandbox.IDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	if err := sandbox.CheckOverlay(context.Background(), id, id); err != nil {
		t.Errorf("in a user namespace: %v", err)
	}
}

func TestInvalidSpec(t *testing.T) {
	_, err := sandbox.Run(context.Background(), sandbox.Spec{Name: "bad", Upper: "rel", Steps: []sandbox.Step{{}}})
	if err == nil || !strings.Contains(err.Error(), "sandbox bad: invalid spec") {
		t.Errorf("err = %v", err)
	}
}

// escapeScript tries every way back to the host file system a step could
// find through pid 1 of its pid namespace (the sandbox process, whose other
// threads stay in the host's mount namespace, and whose open fds include
// the host's mount namespace and folders): each attempt writes a marker
// into host folder dir.
func escapeScript(dir string) string {
	return `
for p in /proc/1/root /proc/1/cwd /proc/1/task/*/root /proc/1/task/*/cwd; do
  echo x > $p` + dir + `/ESCAPED 2>/dev/null && echo escaped-through=$p
done
for fd in /proc/1/fd/* /proc/1/task/*/fd/*; do
  test -d $fd/ && ls $fd/ >/dev/null 2>&1 && echo fd-readable=$fd
  echo x > $fd` + dir + `/ESCAPED 2>/dev/null && echo escaped-through=$fd
done
grep -E '^Cap(Bnd|Eff)' /proc/self/status
for f in /proc/1/mountinfo /proc/1/task/*/mountinfo; do
  grep -q . $f 2>/dev/null && echo escaped-through=$f
done
true
`
}

// assertNoEscape runs escapeScript's output checks.
func assertNoEscape(t *testing.T, dir, out string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "ESCAPED")); err == nil {
		t.Errorf("a step wrote to the host file system:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "escaped-through=") || strings.HasPrefix(l, "fd-readable=") {
			t.Errorf("step reached pid 1: %s", l)
		}
	}
}

func TestStepCannotReachHostThroughPid1(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	dir := t.TempDir()
	imp := filepath.Join(t.TempDir(), "imp")
	os.Mkdir(imp, 0o755)
	spec := e.spec(script(escapeScript(dir)))
	spec.Steps = append([]sandbox.Step{{Copy: &sandbox.Copy{Source: imp, Dest: "/imp"}}}, spec.Steps...)
	out, errOut := mustRun(t, spec)
	assertNoEscape(t, dir, out+errOut)
	t.Logf("%s", out)
}

func TestCopyMergesThroughSymlinkedFolders(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, "lib/app"), 0o755)
	os.WriteFile(filepath.Join(src, "lib/app/mod"), []byte("mod"), 0o644)
	mustRun(t, e.spec(
		script("mkdir -p /usr/lib && echo old > /usr/lib/keep && ln -s usr/lib /lib"),
		sandbox.Step{Copy: &sandbox.Copy{Source: src, Dest: "/"}, Where: "c.go:1"},
	))
	if fi, err := os.Lstat(filepath.Join(e.upper, "lib")); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("/lib is no longer a symlink: %v %v", fi, err)
	}
	for _, p := range []string{"usr/lib/keep", "usr/lib/app/mod"} {
		if _, err := os.Stat(filepath.Join(e.upper, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestBrokenPasswdLineIsAnError(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	spec := e.spec(
		script("printf 'short:x:7\\nroot:x:0:0:root:/root:/bin/sh\\n' > /etc/passwd"),
		sandbox.Step{Argv: []string{"id", "-u"}, Where: "u.go:1"},
	)
	spec.User = "short"
	_, _, _, err := run(t, spec)
	if err == nil || !strings.Contains(err.Error(), "no user short") {
		t.Errorf("user on a 3-field passwd line: %v", err)
	}
	spec.User = "7"
	if out, errOut := mustRun(t, spec); out != "7\n" {
		t.Errorf("numeric user next to a broken line: %q %q", out, errOut)
	}
}

// TestInheritedDescriptorsDoNotReachSteps gives the sandbox a host folder
// on a descriptor without close-on-exec, as a shell's "exec 7<dir" does.
func TestInheritedDescriptorsDoNotReachSteps(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	dir := t.TempDir()
	dfd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dfd)
	// Well above the descriptors the sandbox is given on purpose.
	const fd = 40
	if err := syscall.Dup2(dfd, fd); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	out, errOut := mustRun(t, e.spec(script(fmt.Sprintf(`echo fds=$(ls /proc/$$/fd | tr '\n' ' '); echo x > /proc/$$/fd/%d/LEAKED || true`, fd))))
	if _, err := os.Stat(filepath.Join(dir, "LEAKED")); err == nil {
		t.Errorf("a step wrote into a host folder through inherited fd %d", fd)
	}
	for _, f := range strings.Fields(strings.TrimPrefix(strings.Split(out, "\n")[0], "fds=")) {
		if f == strconv.Itoa(fd) {
			t.Errorf("the step's shell has descriptor %d open:\n%s%s", fd, out, errOut)
		}
	}
}

// TestStepSeesItsOwnProcessesOnly: pid 1 (strata) is hidden, a step's own
// processes of other users are not, and strace-like inspection of them
// works (CAP_SYS_PTRACE in the step's user namespace).
func TestStepSeesItsOwnProcessesOnly(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	out, _ := mustRun(t, e.spec(script(`
test -e /proc/1 && echo pid1=visible || echo pid1=hidden
echo 'nobody:x:65534:65534::/:/bin/sh' >> /etc/passwd
su -s /bin/sh nobody -c 'exec sleep 30' &
sleep 0.3
for p in /proc/[0-9]*; do
  test "$(cat $p/comm 2>/dev/null)" = sleep && echo sleep-uid=$(awk '/^Uid/{print $2}' $p/status) environ=$(test -r $p/environ && echo readable)
done
true
`)))
	for _, want := range []string{"pid1=hidden", "sleep-uid=65534 environ=readable"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestImportsStayInTheRootfs: the sandbox process copies imports itself,
// and its other threads keep the host's root, so a symlink through
// /proc/1/task/N/root in the image (from a base or an earlier step) must
// not lead an import, the working dir or a user lookup to the host.
func TestImportsStayInTheRootfs(t *testing.T) {
	requireRoot(t)
	host := t.TempDir()
	os.Chmod(host, 0o700)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "f"), []byte("x"), 0o644)
	file := filepath.Join(src, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	mode := uint32(0o777)
	for n := 1; n <= 12; n++ {
		e := newEnv(t)
		evil := filepath.Join(t.TempDir(), "evil")
		os.MkdirAll(filepath.Join(evil, "etc"), 0o755)
		link := fmt.Sprintf("/proc/1/task/%d/root%s", n, host)
		for _, l := range []string{"evil", "wd"} {
			os.Symlink(link, filepath.Join(evil, l))
		}
		os.Symlink(link+"/passwd", filepath.Join(evil, "etc", "passwd"))
		e.lowers = append([]string{evil}, e.lowers...)
		for _, spec := range []sandbox.Spec{
			e.spec(sandbox.Step{Copy: &sandbox.Copy{Source: file, Dest: "/evil/pwned"}, Where: "c.go:1"}),
			e.spec(sandbox.Step{Copy: &sandbox.Copy{Source: filepath.Join(src, "d"), Dest: "/evil", Mode: &mode}, Where: "c.go:2"}),
			e.spec(script(`ln -s `+link+` /late`), sandbox.Step{Copy: &sandbox.Copy{Source: file, Dest: "/late/pwned2"}, Where: "c.go:3"}),
			func() sandbox.Spec { s := e.spec(script("true")); s.WorkDir = "/wd/made"; return s }(),
			func() sandbox.Spec {
				s := e.spec(sandbox.Step{Argv: []string{"true"}, Where: "c.go:4"})
				s.User = "someone"
				return s
			}(),
		} {
			run(t, spec) // may fail: what matters is the host
			os.RemoveAll(e.upper)
			os.Mkdir(e.upper, 0o755)
		}
	}
	entries, _ := os.ReadDir(host)
	if len(entries) != 0 {
		t.Errorf("the sandbox wrote to the host folder: %v", entries)
	}
	if fi, _ := os.Stat(host); fi.Mode().Perm() != 0o700 {
		t.Errorf("the host folder's mode changed to %v", fi.Mode())
	}
}

// buildProbe compiles testdata/probe, statically, for use in a step.
func buildProbe(t *testing.T) string {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	build := exec.Command("go", "build", "-o", probe, "./testdata/probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build the probe: %v\n%s", err, out)
	}
	return probe
}

// TestStepsDoNotPossessTheCallersKeyring: a step cannot find or read a key
// of the caller's session keyring (Kerberos tickets, fscrypt keys).
func TestStepsDoNotPossessTheCallersKeyring(t *testing.T) {
	requireRoot(t)
	probe := buildProbe(t)
	// A session keyring of this thread's own, as a login session has;
	// the sandbox is started from this thread and inherits it. The thread
	// stays locked, so it ends with the test instead of serving others.
	runtime.LockOSThread()
	if _, err := unix.KeyctlJoinSessionKeyring("strata-test-session"); err != nil {
		t.Skipf("cannot make a session keyring here: %v", err)
	}
	id, err := unix.AddKey("user", "strata-test-key", []byte("KEY-VALUE"), unix.KEY_SPEC_SESSION_KEYRING)
	if err != nil {
		t.Skipf("no session keyring here: %v", err)
	}
	defer unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	if out, _ := exec.Command(probe, "key", "strata-test-key").Output(); !strings.Contains(string(out), "read KEY-VALUE") {
		t.Skipf("the probe cannot read the key outside the sandbox either: %s", out)
	}
	e := newEnv(t)
	out, _ := mustRun(t, e.spec(
		sandbox.Step{Copy: &sandbox.Copy{Source: probe, Dest: "/probe"}, Where: "k.go:1"},
		script("/probe key strata-test-key"),
	))
	if strings.Contains(out, "KEY-VALUE") || !strings.Contains(out, "none") {
		t.Errorf("a step reached the caller's key:\n%s", out)
	}
}

// TestStepsCannotReachHostAbstractSockets: the network namespace is the
// host's, so its abstract unix sockets are too; Landlock scoping (Linux
// 6.12) keeps steps from connecting to them.
func TestStepsCannotReachHostAbstractSockets(t *testing.T) {
	requireRoot(t)
	if !sandbox.AbstractSocketsScoped() {
		t.Skip("this kernel has no Landlock scoping (Linux 6.12)")
	}
	probe := buildProbe(t)
	l, err := net.Listen("unix", "@strata-test-abstract")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if out, _ := exec.Command(probe, "abstract", "strata-test-abstract").Output(); !strings.Contains(string(out), "connected") {
		t.Fatalf("the probe cannot connect outside the sandbox either: %s", out)
	}
	e := newEnv(t)
	out, _ := mustRun(t, e.spec(
		sandbox.Step{Copy: &sandbox.Copy{Source: probe, Dest: "/probe"}, Where: "k.go:1"},
		script("/probe abstract strata-test-abstract"),
	))
	if !strings.Contains(out, "refused") {
		t.Errorf("a step connected to a host abstract socket:\n%s", out)
	}
}

// TestMountPointBehindASymlinkIsCleanedUp: a bind whose destination the
// image reaches through a symlink (/var/run -> ../run) is created in the
// link's target; afterwards only that folder's copy-up remains, with its
// time as it was, and the link is untouched.
func TestMountPointBehindASymlinkIsCleanedUp(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	top := filepath.Join(e.dir, "top")
	os.MkdirAll(filepath.Join(top, "run"), 0o755)
	os.MkdirAll(filepath.Join(top, "var"), 0o755)
	os.Symlink("../run", filepath.Join(top, "var", "run"))
	old := time.Unix(1000000000, 0)
	os.Chtimes(filepath.Join(top, "run"), old, old)
	e.lowers = append([]string{top}, e.lowers...)
	spec := e.spec(script("test -d /var/run/x && echo mounted"))
	spec.Binds = []sandbox.Bind{{Source: t.TempDir(), Dest: "/var/run/x"}}
	if out, _ := mustRun(t, spec); out != "mounted\n" {
		t.Errorf("stdout %q", out)
	}
	entries, _ := os.ReadDir(e.upper)
	for _, en := range entries {
		if en.Name() != "run" {
			t.Errorf("upper dir holds %s", en.Name())
		}
	}
	if fi, err := os.Stat(filepath.Join(e.upper, "run")); err == nil && !fi.ModTime().Equal(old) {
		t.Errorf("/run's time is %v after the mount point went, want %v", fi.ModTime(), old)
	}
}
