package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/runtime/host"
	"github.com/strata-build/strata/runtime/sandbox"
)

// The tests of this file run through the real CLI, as root and (from
// TestRootlessSuite in rootless_test.go) as an unprivileged user with
// subordinate ids. The definitions are in testdata/contract.

// hostEnv are the variables the contract passes from strata's environment
// to the steps, with the values the tests give them.
var hostEnv = map[string]string{
	"HTTP_PROXY": "http://proxy.invalid:3128", "HTTPS_PROXY": "http://proxy.invalid:3129",
	"NO_PROXY": "localhost,.invalid", "FTP_PROXY": "http://proxy.invalid:2121",
	"http_proxy": "http://lower.invalid:3128", "https_proxy": "http://lower.invalid:3129",
	"no_proxy": "127.0.0.1", "ftp_proxy": "http://lower.invalid:2121",
	"TERM": "xterm-strata-test", "SOURCE_DATE_EPOCH": "1700000000",
}

// contractCLI runs strata in testdata/contract with a store, a layout and a
// read-write bind folder of its own.
type contractCLI struct {
	t                      *testing.T
	tmp, store, layout, rw string
	env                    []string
}

func newContractCLI(t *testing.T) *contractCLI {
	t.Helper()
	tmp := t.TempDir()
	c := &contractCLI{t: t, tmp: tmp, store: filepath.Join(tmp, "store"), layout: filepath.Join(tmp, "oci"), rw: filepath.Join(tmp, "rw")}
	if err := os.Mkdir(c.rw, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir's own cleanup, so it runs first: files a
	// rootless step chowned belong to subordinate ids, which only a user
	// namespace can remove.
	t.Cleanup(func() { removeStore(t, c.store) })
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if _, ok := hostEnv[k]; !ok {
			c.env = append(c.env, e)
		}
	}
	for k, v := range hostEnv {
		c.env = append(c.env, k+"="+v)
	}
	c.env = append(c.env, "STRATA_CONTRACT_RW="+c.rw, "STRATA_NOT_PASSED=leak")
	return c
}

// removeStore removes a store as its owner can: from a user namespace when
// not root.
func removeStore(t *testing.T, dir string) {
	if _, err := os.Stat(dir); err != nil {
		return
	}
	var uids, gids []sandbox.IDMap
	if os.Geteuid() != 0 {
		var err error
		if uids, gids, err = host.IDMaps(); err != nil {
			t.Errorf("remove %s: %v", dir, err)
			return
		}
	}
	if err := sandbox.RemoveAll(context.Background(), dir, uids, gids); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

// cmd prepares a strata command in testdata/contract.
func (c *contractCLI) cmd(stdin string, args ...string) *exec.Cmd {
	cmd := exec.Command(strataBin, args...)
	cmd.Dir = "testdata/contract"
	cmd.Env = c.env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd
}

// run runs strata and returns its combined output and exit status.
func (c *contractCLI) run(stdin string, args ...string) (string, int) {
	c.t.Helper()
	cmd := c.cmd(stdin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return buf.String(), ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("strata %v: %v", args, err)
	}
	return buf.String(), 0
}

func (c *contractCLI) mustRun(stdin string, args ...string) string {
	c.t.Helper()
	out, code := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("strata %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// storeFlags are the flags of build and chroot; layoutFlags add the layout.
func (c *contractCLI) storeFlags() []string { return []string{"--store", c.store} }
func (c *contractCLI) layoutFlags() []string {
	return []string{"--store", c.store, "--layout", c.layout}
}

// facts collects the "IMAGE | fact NAME=VALUE" lines of a build log.
func facts(out, image string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, image+" | fact "); ok {
			k, val, _ := strings.Cut(v, "=")
			m[k] = val
		}
	}
	return m
}

func mode() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return "rootless"
}

// TestContract builds the facts, owners, runme and builder images once and
// checks the build container contract item by item.
func TestContract(t *testing.T) {
	c := newContractCLI(t)
	out := c.mustRun("", append([]string{"build"}, append(c.layoutFlags(), "facts", "owners", "runme", "builder")...)...)
	t.Logf("build as %s:\n%s", mode(), out)
	f := facts(out, "facts")
	want := func(name, value string) {
		t.Helper()
		if f[name] != value {
			t.Errorf("%s = %q, want %q", name, f[name], value)
		}
	}

	t.Run("HostNetwork", func(t *testing.T) {
		host, _ := os.Readlink("/proc/self/ns/net")
		want("net", host)
	})
	t.Run("ResolvConf", func(t *testing.T) {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			t.Skip("the host has no /etc/resolv.conf")
		}
		sum := md5.Sum(b)
		want("resolv", hex.EncodeToString(sum[:]))
	})
	t.Run("Environment", func(t *testing.T) {
		// Exactly: a default PATH and HOME, the passed-through host
		// variables, the image's environment and its build-only one.
		env := []string{"PATH=" + runtime.DefaultPath, "HOME=/root", "IMAGE_ENV=in-the-config", "BUILD_ONLY=steps-only"}
		for k, v := range hostEnv {
			env = append(env, k+"="+v)
		}
		sort.Strings(env)
		want("env", strings.Join(env, " ")+" ")
		_, cfg := image(t, c.layout, "facts")
		if !contains(cfg.Config.Env, "IMAGE_ENV=in-the-config") {
			t.Errorf("image config env %v lacks IMAGE_ENV", cfg.Config.Env)
		}
		for _, e := range cfg.Config.Env {
			if strings.HasPrefix(e, "BUILD_ONLY=") || strings.Contains(e, "proxy.invalid") {
				t.Errorf("image config has the build-only %s", e)
			}
		}
	})
	t.Run("Hostname", func(t *testing.T) { want("hostname", "facts") })
	t.Run("SysAndFreshProc", func(t *testing.T) {
		want("sys", "sysfs")
		want("proc", "proc")
		// pid 1 is strata's sandbox process, hidden from the steps.
		want("pid1", "")
		if n, _ := strconv.Atoi(f["pids"]); n < 1 || n > 8 {
			t.Errorf("the step's /proc shows %q processes, want only its own few", f["pids"])
		}
	})
	t.Run("Dev", func(t *testing.T) {
		for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
			want("dev-"+d, "char")
		}
		want("pts", "devpts")
		want("shm", "tmpfs")
		want("zero", "000000")
	})
	t.Run("Binds", func(t *testing.T) {
		want("ro", "from the host, read-only")
		want("ro-write", "refused")
		if b, err := os.ReadFile(filepath.Join(c.rw, "out")); err != nil || string(b) != "written-by-the-step\n" {
			t.Errorf("read-write bind: the host sees %q, %v", b, err)
		}
		m, _ := image(t, c.layout, "facts")
		for name := range layerEntries(t, c.layout, m.Layers[len(m.Layers)-1]) {
			if strings.HasPrefix(name, "mnt") || strings.HasPrefix(name, ".strata") {
				t.Errorf("the layer holds the mount point %s", name)
			}
		}
	})
	t.Run("ImportsReadable", func(t *testing.T) { want("import", "tool from imports") })
	t.Run("ScriptShells", func(t *testing.T) {
		want("flags", "xe") // no #!: sh -xe
		if !strings.Contains(out, "facts | + f hostname facts") {
			t.Error("sh -x did not echo the commands")
		}
		want("shebang-flags", "[]") // its own #!: as written
	})
	t.Run("ProcessesEndWithTheStep", func(t *testing.T) {
		want("daemon", "gone")
		if p := hostProcesses("sleep\x001000.77"); len(p) > 0 {
			t.Errorf("a step's daemon outlived the build: %v", p)
		}
	})
	t.Run("LayerOwners", func(t *testing.T) {
		m, _ := image(t, c.layout, "owners")
		entries := layerEntries(t, c.layout, m.Layers[len(m.Layers)-1])
		for name, uid := range map[string]int{
			"made": 0, "owned": 1234, "usr/bin/strata-test": 0, "usr/share/strata-test/owned": 1234, "var/lib/dpkg/status": 0,
		} {
			h := entries[name]
			if h == nil {
				t.Errorf("the layer lacks %s; it has %v", name, keys(entries))
				continue
			}
			if h.Uid != uid || h.Gid != uid {
				t.Errorf("%s is owned by %d:%d in the layer, want %d:%d", name, h.Uid, h.Gid, uid, uid)
			}
		}
		if entries["bin/.wh.vi"] == nil {
			t.Error("deleting a base file left no whiteout")
		}
		if entries["label-script-was-here"] != nil || entries["stacker/"] != nil {
			t.Error("the layer holds what the GenerateLabels script wrote")
		}
	})
	t.Run("GenerateLabels", func(t *testing.T) {
		_, cfg := image(t, c.layout, "owners")
		if got := cfg.Config.Labels["owned-by"]; got != "1234:1234" {
			t.Errorf("label owned-by = %q, want 1234:1234 (labels: %v)", got, cfg.Config.Labels)
		}
	})
	noMountsUnder(t, c.tmp)

	t.Run("Run", func(t *testing.T) { testRun(t, c) })
	t.Run("Chroot", func(t *testing.T) { testChroot(t, c) })
	t.Run("RunLeavesStoreFree", func(t *testing.T) { testRunLeavesStoreFree(t, c) })
}

// testRunLeavesStoreFree checks that a long strata run does not hold the
// store: builds go on beside it, strata clean refuses to pull its layers
// away, and a killed run's workspace is removed by the next command.
func testRunLeavesStoreFree(t *testing.T, c *contractCLI) {
	run := c.cmd("", append([]string{"run"}, append(c.layoutFlags(), "runme", "--", "sh", "-c", "echo ready; sleep 60")...)...)
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("strata run said %q: %v", line, err)
	}
	if out, code := c.run("", append([]string{"build", "--no-wait"}, append(c.layoutFlags(), "builder")...)...); code != 0 {
		t.Errorf("a build beside a running strata run: exit %d:\n%s", code, out)
	}
	out, code := c.run("", "clean", "--store", c.store, "--layout", filepath.Join(c.tmp, "no-layout"))
	if code == 0 || !strings.Contains(out, "in use by pid "+strconv.Itoa(run.Process.Pid)) {
		t.Errorf("strata clean while strata run uses the store: exit %d:\n%s", code, out)
	}
	sessions := filepath.Join(c.store, "sessions")
	if entries, _ := os.ReadDir(sessions); len(entries) != 1 {
		t.Errorf("sessions/ holds %d entries during a run, want 1", len(entries))
	}
	run.Process.Signal(syscall.SIGKILL)
	run.Wait()
	// The container holds the session until the kernel has killed it
	// too, a moment after strata.
	var entries []os.DirEntry
	for try := 0; try < 50; try++ {
		c.mustRun("", append([]string{"build", "--no-wait"}, append(c.layoutFlags(), "builder")...)...)
		if entries, _ = os.ReadDir(sessions); len(entries) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(entries) != 0 {
		t.Errorf("the workspace of a killed strata run was left in %s: %v", sessions, entries)
	}
	noMountsUnder(t, c.tmp)
}

// testRun checks that strata run follows the image config.
func testRun(t *testing.T, c *contractCLI) {
	out, code := c.run("hello-from-stdin\n", append([]string{"run"}, append(c.layoutFlags(), "runme")...)...)
	if code != 3 {
		t.Errorf("exit status %d, want the entrypoint's 3:\n%s", code, out)
	}
	for _, w := range []string{"uid=4321 gid=4322 cwd=/home/app RUN_ENV=from-config host=runme", "got=hello-from-stdin"} {
		if !strings.Contains(out, w) {
			t.Errorf("strata run printed %q, want %q", out, w)
		}
	}
	if out, code := c.run("", append([]string{"run"}, append(c.layoutFlags(), "runme", "--", "sh", "-c", "exit 7")...)...); code != 7 {
		t.Errorf("-- sh -c 'exit 7': exit status %d:\n%s", code, out)
	}
	if out, code := c.run("", append([]string{"run"}, append(c.layoutFlags(), "runme", "--", "sh", "-c", "kill -TERM $$")...)...); code != 128+15 {
		t.Errorf("a process killed by SIGTERM: exit status %d, want 143:\n%s", code, out)
	}
	if out, code := c.run("", append([]string{"run"}, append(c.layoutFlags(), "runme", "--", "no-such-command")...)...); code != 127 || !strings.Contains(out, "no-such-command") {
		t.Errorf("a missing command: exit status %d:\n%s", code, out)
	}
	if out, code := c.run("", append([]string{"run"}, append(c.layoutFlags(), "nosuch")...)...); code == 0 || !strings.Contains(out, `has no image tagged "nosuch" (tags: `) || !strings.Contains(out, "strata build nosuch") {
		t.Errorf("run of an image not in the layout: exit %d:\n%s", code, out)
	}
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) for a terminal")
	}
	// script(1) gives strata a terminal; the process gets it as its own.
	line := strataBin + " run " + strings.Join(c.layoutFlags(), " ") + ` runme -- sh -c 'test -t 0 && test -t 1 && echo tty=attached; echo name=$(tty); exit 5'`
	cmd := c.cmd("", "")
	cmd.Path, cmd.Args = mustLook(t, "script"), []string{"script", "-qec", line, "/dev/null"}
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 || !strings.Contains(string(b), "tty=attached") || !strings.Contains(string(b), "name=/dev/pts/0") {
		t.Errorf("with a terminal: %v:\n%s", err, b)
	}
	// stdin the terminal, stdout and stderr files: only stdin is the
	// container's pty, the files get the bytes as written.
	outFile, errFile := filepath.Join(c.tmp, "run.out"), filepath.Join(c.tmp, "run.err")
	line = strataBin + " run " + strings.Join(c.layoutFlags(), " ") + ` runme -- sh -c 'printf "a\nb\n"; echo to-stderr >&2; test -t 0 && echo in-tty >&2' >` + outFile + " 2>" + errFile
	cmd = c.cmd("", "")
	cmd.Path, cmd.Args = mustLook(t, "script"), []string{"script", "-qec", line, "/dev/null"}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("run with output to files: %v\n%s", err, b)
	}
	if o, e := mustReadString(t, outFile), mustReadString(t, errFile); o != "a\nb\n" || e != "to-stderr\nin-tty\n" {
		t.Errorf("with stdin a terminal, stdout got %q and stderr %q", o, e)
	}
	// A background job of an interactive shell (strata run ... &) may not
	// touch the terminal's modes: it runs with /dev/null as stdin instead
	// of stopping for good.
	if _, err := exec.LookPath("bash"); err == nil {
		bg := filepath.Join(c.tmp, "bg.sh")
		os.WriteFile(bg, []byte(strataBin+" run "+strings.Join(c.layoutFlags(), " ")+` runme -- sh -c 'echo bg-ran; test -t 0 || echo stdin-not-tty' &
wait $!
echo bg-rc=$?
`), 0o644)
		cmd = c.cmd("", "")
		cmd.Path, cmd.Args = mustLook(t, "script"), []string{"script", "-qec", "bash --norc -i " + bg, "/dev/null"}
		cmd.WaitDelay = time.Second
		done := make(chan struct{})
		timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill(); close(done) })
		b, err := cmd.CombinedOutput()
		timer.Stop()
		select {
		case <-done:
			t.Errorf("strata run in the background hung:\n%s", b)
		default:
			if err != nil || !strings.Contains(string(b), "bg-ran") || !strings.Contains(string(b), "stdin-not-tty") || !strings.Contains(string(b), "bg-rc=0") {
				t.Errorf("strata run in the background: %v\n%s", err, b)
			}
		}
	}
	// stdin a pipe, stdout the caller's terminal: the container holds no
	// terminal at all (it could set its modes or read its keys).
	line = "echo | " + strataBin + " run " + strings.Join(c.layoutFlags(), " ") + ` runme -- sh -c 'test -t 1 && echo stdout-tty; (: </dev/tty) 2>/dev/null && echo devtty-opens; echo checked'`
	cmd = c.cmd("", "")
	cmd.Path, cmd.Args = mustLook(t, "script"), []string{"script", "-qec", line, "/dev/null"}
	b, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "checked") || strings.Contains(string(b), "stdout-tty") || strings.Contains(string(b), "devtty-opens") {
		t.Errorf("stdin a pipe, stdout a terminal: %v:\n%s", err, b)
	}
}

func mustLook(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testChroot checks strata chroot on the build-only builder.
func testChroot(t *testing.T, c *contractCLI) {
	args := func(rest ...string) []string { return append(append([]string{"chroot"}, c.storeFlags()...), rest...) }
	out := c.mustRun("cat /built; hostname; id -u\n", args("builder")...)
	if out != "made-in-builder\nbuilder\n0\n" {
		t.Errorf("a shell on stdin printed %q", out)
	}
	if out, code := c.run("", args("builder", "--", "sh", "-c", "echo x > /tmp/scratch; exit 5")...); code != 5 {
		t.Errorf("exit status %d, want 5:\n%s", code, out)
	}
	if out, code := c.run("", args("builder", "--", "sh", "-c", "kill -INT $$")...); code != 128+2 {
		t.Errorf("a shell killed by SIGINT: exit status %d, want 130:\n%s", code, out)
	}
	if out, code := c.run("", args("builder", "--", "test", "-e", "/tmp/scratch")...); code != 1 {
		t.Errorf("a change survived the chroot (exit %d):\n%s", code, out)
	}
	if out, code := c.run("", args("nosuch")...); code == 0 || !strings.Contains(out, `no image named "nosuch"`) {
		t.Errorf("unknown image: exit %d:\n%s", code, out)
	}
	if out, code := c.run("", args("broken")...); code == 0 || !strings.Contains(out, "not built") {
		t.Errorf("an image never built: exit %d:\n%s", code, out)
	}
	noMountsUnder(t, c.tmp)
}

// TestShellOnFailure opens a shell, reading commands from stdin, in the
// container of a failed step, which sees what the step left.
func TestShellOnFailure(t *testing.T) {
	c := newContractCLI(t)
	out, code := c.run("cat /state; echo in-shell host=$(hostname); exit 0\n",
		append([]string{"build", "--shell-on-failure"}, append(c.layoutFlags(), "broken")...)...)
	if code != 4 {
		t.Errorf("exit status %d, want the step's 4:\n%s", code, out)
	}
	shell := strings.Index(out, "state-at-failure\nin-shell host=broken\n")
	report := strings.Index(out, "FAILED broken")
	if shell < 0 || report < shell {
		t.Errorf("want the shell's output, then the failure:\n%s", out)
	}
	noMountsUnder(t, c.tmp)
	if entries, _ := os.ReadDir(filepath.Join(c.store, "tmp")); len(entries) != 0 {
		t.Errorf("store tmp/ keeps %d entries", len(entries))
	}
}

// TestInterrupt stops a running step with SIGTERM and SIGINT: exit 143
// and 130, no process or mount left, and the next build works.
// waitGone waits (bounded) until no host process matches; the kernel
// delivers a parent-death signal asynchronously.
func waitGone(t *testing.T, match string) {
	t.Helper()
	for i := 0; i < 100 && len(hostProcesses(match)) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInterrupt(t *testing.T) {
	// SIGKILL gives strata no chance to clean up: the sandbox dies with it
	// and the next build removes what the step left in the store.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			c := newContractCLI(t)
			cmd := c.cmd("", append([]string{"build"}, append(c.layoutFlags(), "sleeper")...)...)
			pr, pw := io.Pipe()
			cmd.Stdout, cmd.Stderr = pw, pw
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			started, drained := make(chan bool, 1), make(chan struct{})
			go func() {
				defer close(drained)
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					log.WriteString(sc.Text() + "\n")
					if sc.Text() == "sleeper | started" {
						started <- true
					}
				}
				close(started)
			}()
			if !<-started {
				cmd.Wait()
				<-drained
				t.Fatalf("the step never started:\n%s", log.String())
			}
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			pw.Close()
			<-drained
			if ee, ok := err.(*exec.ExitError); sig != syscall.SIGKILL && (!ok || ee.ExitCode() != 128+int(sig)) {
				t.Errorf("exit: %v, want status %d:\n%s", err, 128+int(sig), log.String())
			}
			if sig == syscall.SIGKILL {
				// The kernel kills the sandbox with its parent, a moment
				// later; then the next build cleans up.
				waitGone(t, "sleep\x001000.66")
				c.mustRun("", append([]string{"build"}, append(c.layoutFlags(), "owners")...)...)
			}
			if p := hostProcesses("sleep\x001000.66"); len(p) > 0 {
				t.Errorf("the step outlived the build: %v", p)
			}
			noMountsUnder(t, c.tmp)
			if entries, _ := os.ReadDir(filepath.Join(c.store, "tmp")); len(entries) != 0 {
				t.Errorf("store tmp/ keeps %d entries", len(entries))
			}
			c.mustRun("", append([]string{"build"}, append(c.layoutFlags(), "owners")...)...)
		})
	}
}

// TestCheck runs strata check on a machine that can build.
func TestCheck(t *testing.T) {
	c := newContractCLI(t)
	out, code := c.run("", "check", "--store", c.store)
	if code != 0 {
		t.Fatalf("strata check exited %d:\n%s", code, out)
	}
	for _, w := range []string{"ok      kernel: ", "ok      overlay mount with whiteouts: ", "ok      store folder: ", "ok      free disk: "} {
		if !strings.Contains(out, w) {
			t.Errorf("strata check lacks %q:\n%s", w, out)
		}
	}
	if os.Geteuid() != 0 {
		for _, w := range []string{"ok      subordinate ids: ", "ok      newuidmap: ", "ok      newgidmap: "} {
			if !strings.Contains(out, w) {
				t.Errorf("strata check lacks %q:\n%s", w, out)
			}
		}
	}
	// A failed check stops a build before it does any work.
	real := filepath.Join(c.tmp, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(c.tmp, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	out, code = c.run("", "check", "--store", filepath.Join(link, "store"))
	if code == 0 || !strings.Contains(out, "FAILED  store folder: "+link+" is behind a symlink") {
		t.Errorf("store behind a symlink: exit %d:\n%s", code, out)
	}
	out, code = c.run("", "build", "--store", filepath.Join(link, "store"), "--layout", c.layout, "owners")
	if code == 0 || !strings.Contains(out, "cannot build yet") || strings.Contains(out, "building") {
		t.Errorf("build with a bad store: exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(real, "store")); !os.IsNotExist(err) {
		t.Errorf("the refused build created its store: %v", err)
	}
}

// TestBindSourceMustExist: a bind of a missing host path is an error that
// names the definition's file:line, before anything runs.
func TestBindSourceMustExist(t *testing.T) {
	img := dsl.New("binds").From(dsl.Scratch()).Bind("/nonexistent/strata-bind", "/mnt/x")
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	if err == nil || !strings.Contains(err.Error(), "contract_test.go:") || !strings.Contains(err.Error(), "/nonexistent/strata-bind") {
		t.Errorf("err = %v", err)
	}
}

// hostProcesses returns the command lines of processes whose command line
// contains s (NUL-separated arguments).
func hostProcesses(s string) []string {
	var out []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if bytes.Contains(b, []byte(s)) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func mustReadString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
