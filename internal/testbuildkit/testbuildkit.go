// Package testbuildkit gives tests a real buildkitd with the runc worker,
// built from the same BuildKit release the module depends on.
package testbuildkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/mountinfo"
)

// Options configures the daemon.
type Options struct {
	// NoHostNetwork starts the daemon without the network.host
	// entitlement strata's steps ask for, to test that refusal.
	NoHostNetwork bool
	// TCP makes the daemon listen on a port of 127.0.0.1 too
	// (Daemon.TCPAddr), as a build host serves its clients.
	TCP bool
}

// Daemon is a running buildkitd.
type Daemon struct {
	// Addr is the daemon's address, "unix:///…/buildkitd.sock".
	Addr string
	// Root is the daemon's --root state directory.
	Root string
	// Buildctl is the path to a buildctl of the same version.
	Buildctl string
	// LogPath holds the daemon's stdout and stderr.
	LogPath string
	// TCPAddr is "tcp://127.0.0.1:PORT" with Options.TCP.
	TCPAddr string
}

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	// sun_path is 108 bytes including the terminating NUL.
	maxSocketPath = 107
)

// Start builds (once, cached by version) and starts buildkitd as root on a
// unix socket in a temp dir with the runc worker, and returns its address
// ("unix:///…/buildkitd.sock"). It stops the daemon and removes its state at
// t.Cleanup. It skips the test (t.Skip) only when not root; every other
// failure is t.Fatal with the daemon's log tail.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testbuildkit: buildkitd with the runc worker needs root")
	}
	buildkitd, buildctl := Binaries(t)

	// Not t.TempDir: its paths are long enough to overflow sun_path.
	dir, err := os.MkdirTemp("", "bk")
	if err == nil && len(filepath.Join(dir, "buildkitd.sock")) > maxSocketPath {
		os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "bk")
	}
	if err != nil {
		t.Fatalf("testbuildkit: %v", err)
	}
	// Mountinfo reports resolved paths; unmounting must match them.
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	}
	d := &Daemon{
		Addr:     "unix://" + filepath.Join(dir, "buildkitd.sock"),
		Root:     filepath.Join(dir, "root"),
		Buildctl: buildctl,
		LogPath:  filepath.Join(dir, "buildkitd.log"),
	}
	var cmd *exec.Cmd
	exited := make(chan struct{})
	t.Cleanup(func() {
		if cmd != nil {
			stop(cmd, exited)
		}
		if err := unmountUnder(d.Root); err != nil {
			t.Errorf("testbuildkit: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testbuildkit: removing daemon state: %v", err)
		}
	})

	if err := os.Mkdir(d.Root, 0o700); err != nil {
		t.Fatalf("testbuildkit: %v", err)
	}
	logFile, err := os.Create(d.LogPath)
	if err != nil {
		t.Fatalf("testbuildkit: %v", err)
	}
	defer logFile.Close()

	env := childEnv()
	if _, err := lookPathIn("runc", env); err != nil {
		t.Fatalf("testbuildkit: the runc worker needs runc: %v", err)
	}
	args := []string{
		"--root", d.Root,
		"--addr", d.Addr,
		"--oci-worker=true",
		"--containerd-worker=false",
	}
	if !opts.NoHostNetwork {
		args = append(args, "--allow-insecure-entitlement", "network.host")
	}
	if opts.TCP {
		// A port the kernel picked and let go: the daemon binds it a
		// moment later, which another process could take first, but
		// then the daemon fails to start and says so.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testbuildkit: %v", err)
		}
		d.TCPAddr = "tcp://" + l.Addr().String()
		l.Close()
		args = append(args, "--addr", d.TCPAddr)
	}
	cmd = exec.Command(buildkitd, args...)
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// A test binary killed by a timeout must not leave a daemon behind
	// holding mounts under /tmp.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cmd = nil
		t.Fatalf("testbuildkit: starting buildkitd: %v", err)
	}
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	// The socket appears before the workers are initialised; only a
	// successful workers listing means builds will be accepted.
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for {
		select {
		case <-exited:
			t.Fatalf("testbuildkit: buildkitd exited before becoming ready: %v\n%s", waitErr, logTail(d.LogPath))
		default:
		}
		if lastErr = probe(d, env); lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testbuildkit: buildkitd not ready after %s: %v\n%s", readyTimeout, lastErr, logTail(d.LogPath))
		}
		select {
		case <-exited:
		case <-time.After(200 * time.Millisecond):
		}
	}
	return d
}

func probe(d *Daemon, env []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Buildctl, "--addr", d.Addr, "debug", "workers")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("buildctl debug workers: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-exited
	}
}

// childEnv makes sure runc is findable: Debian installs it in /usr/sbin,
// which is missing from PATH for non-login shells and many CI runners.
func childEnv() []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		env = append(env, kv)
	}
	have := map[string]bool{}
	for _, p := range filepath.SplitList(path) {
		have[p] = true
	}
	for _, p := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if !have[p] {
			if path != "" {
				path += string(filepath.ListSeparator)
			}
			path += p
		}
	}
	return append(env, "PATH="+path)
}

func lookPathIn(name string, env []string) (string, error) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, p := range filepath.SplitList(v) {
				if executable(filepath.Join(p, name)) {
					return filepath.Join(p, name), nil
				}
			}
			return "", fmt.Errorf("%s not found in PATH=%s", name, v)
		}
	}
	return "", errors.New("no PATH")
}

// unmountUnder detaches whatever a killed daemon left mounted below root
// (snapshots, bind mounts of running steps); RemoveAll would otherwise fail
// with EBUSY or, worse, descend into a mounted file system.
func unmountUnder(root string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := mountinfo.Unescape(fields[4])
		if p == root || strings.HasPrefix(p, root+"/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// Children before parents, or the parent stays busy.
	sort.Slice(points, func(i, j int) bool {
		return strings.Count(points[i], "/") > strings.Count(points[j], "/")
	})
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// logTail returns the end of the daemon log, which is where the reason for a
// failed start is.
func logTail(path string) string {
	const max = 8 << 10
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no daemon log: %v)", err)
	}
	if len(data) > max {
		data = data[len(data)-max:]
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return "buildkitd log tail (" + path + "):\n" + string(data)
}
