package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeRangeCloexec is CLOSE_RANGE_CLOEXEC of linux/close_range.h, which
// x/sys/unix does not define.
const closeRangeCloexec = 1 << 2

// envKey marks a process as the sandbox child; its value is the stage.
const envKey = "_STRATA_SANDBOX"

const (
	// stageFirst is the child as started by the parent. When rootless it has
	// no capabilities yet (it was exec'd before its uid was mapped), so it
	// waits for the maps and executes itself again.
	stageFirst = "1"
	// stageMapped is the child re-executed as uid 0 of its user namespace,
	// which gives it a full capability set there.
	stageMapped = "2"
)

// Finisher runs in the sandbox child after all steps succeeded, in the
// sandbox's namespaces but with the host file system visible: upperDir is
// the overlay upper dir holding the steps' changes, readable even when
// rootless. It returns a result for [Run]'s caller.
type Finisher func(ctx context.Context, upperDir string, arg json.RawMessage) (json.RawMessage, error)

var (
	finishersMu sync.Mutex
	finishers   = map[string]Finisher{}
	// pending is the child's spec while it waits for its finisher to be
	// registered by a later package init.
	pending *childSpec
)

// RegisterFinisher makes fn available as [FinishSpec].Name name. It must be
// called from an init function (or a package-level variable initialiser) so
// that the re-executed child registers it too; it panics on a duplicate
// name. In the child, registering the finisher the run waits for starts the
// run and never returns.
func RegisterFinisher(name string, fn Finisher) {
	finishersMu.Lock()
	if _, dup := finishers[name]; dup {
		finishersMu.Unlock()
		panic("sandbox: finisher " + name + " registered twice")
	}
	finishers[name] = fn
	cs := pending
	if cs != nil && cs.Finish.Name == name {
		pending = nil
	} else {
		cs = nil
	}
	finishersMu.Unlock()
	if cs != nil {
		childMain(cs)
	}
}

func lookupFinisher(name string) (Finisher, bool) {
	finishersMu.Lock()
	defer finishersMu.Unlock()
	fn, ok := finishers[name]
	return fn, ok
}

// init turns the process into the sandbox child when the parent marked it
// so. It must run in init, before the host program's main can do anything.
func init() {
	stage := os.Getenv(envKey)
	if stage == "" {
		return
	}
	// Namespace and root changes below are per thread; keep this goroutine
	// on the main thread (the thread group leader, which /proc/self names).
	runtime.LockOSThread()
	childEntry(stage)
}

func childEntry(stage string) {
	cs, err := readSpec()
	if err != nil {
		exitWith(childResult{Error: "sandbox setup: " + err.Error()})
	}
	if stage == stageFirst && cs.Rootless {
		var b [1]byte
		if n, _ := unix.Read(fdSync, b[:]); n != 1 {
			os.Exit(1) // the parent failed to map our ids, or died
		}
		err := unix.Exec("/proc/self/exe", os.Args, []string{envKey + "=" + stageMapped})
		exitWith(childResult{Error: "sandbox setup: re-exec: " + err.Error()})
	}
	os.Unsetenv(envKey)
	// No descriptor of ours reaches a step: not the spec and pipes above
	// stdin, stdout and stderr, and not what strata itself inherited
	// without close-on-exec (a shell's "exec 7</some/dir" would otherwise
	// hand a step a host folder). Go marks its own descriptors already.
	if err := unix.CloseRange(3, math.MaxUint32, closeRangeCloexec); err != nil {
		for fd := 3; fd < 1024; fd++ {
			unix.CloseOnExec(fd) // kernels before 5.11
		}
	}
	// The parent-death signal set by the parent is cleared when the
	// re-exec gains capabilities; set it again and check the parent did
	// not die in between (its end of the sync pipe would be closed).
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if pfd := []unix.PollFd{{Fd: fdSync, Events: unix.POLLIN}}; func() bool {
		n, _ := unix.Poll(pfd, 0)
		return n > 0 && pfd[0].Revents&unix.POLLHUP != 0
	}() {
		os.Exit(1)
	}
	if cs.Mode == modeRun && cs.Finish != nil {
		if _, ok := lookupFinisher(cs.Finish.Name); !ok {
			// Let the remaining package inits run; RegisterFinisher
			// starts the run.
			finishersMu.Lock()
			pending = cs
			finishersMu.Unlock()
			return
		}
	}
	childMain(cs)
}

func readSpec() (*childSpec, error) {
	f := os.NewFile(fdSpec, "spec")
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// ReadAt leaves the offset alone, so that a re-exec can read it again.
	data, err := io.ReadAll(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return nil, err
	}
	var cs childSpec
	return &cs, json.Unmarshal(data, &cs)
}

// childMain runs the child's job and exits.
func childMain(cs *childSpec) {
	var res childResult
	var err error
	switch cs.Mode {
	case modeRun:
		res.Finish, err = runSandbox(cs)
	case modeCheck:
		err = runCheck(cs)
	case modeRemove:
		err = runRemove(cs)
	default:
		err = fmt.Errorf("unknown mode %q", cs.Mode)
	}
	var se *StepError
	switch {
	case errors.As(err, &se):
		res.Step = se
	case err != nil:
		res.Error = err.Error()
	}
	exitWith(res)
}

func exitWith(res childResult) {
	res.Done = true
	data, _ := json.Marshal(res)
	unix.Write(fdResult, data)
	if res.Error != "" || res.Step != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// becomeRoot makes the child uid and gid 0 of its user namespace and drops
// the supplementary groups, which are unmapped there.
func becomeRoot() error {
	if err := syscall.Setgroups([]int{}); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	return nil
}

// runSandbox is the child's run: mount, pivot, run the steps, finish.
func runSandbox(cs *childSpec) (json.RawMessage, error) {
	if cs.Rootless {
		if err := becomeRoot(); err != nil {
			return nil, fmt.Errorf("sandbox setup: %w", err)
		}
	}
	// Steps and imports get the same umask whoever runs strata, so that
	// images do not depend on it.
	syscall.Umask(0o022)
	// Signals for the build go to the parent, which kills the whole pid
	// namespace; a terminal's Ctrl-C must not kill pid 1 under a step
	// that handles it (an interactive shell). Caught signals are reset
	// to default in the steps.
	signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)

	r, m0, sources, err := setupSandbox(cs)
	if err != nil {
		return nil, fmt.Errorf("sandbox setup: %w", err)
	}
	if err := confine(); err != nil {
		return nil, fmt.Errorf("sandbox setup: %w", err)
	}
	root, err := openInRoot()
	if err != nil {
		return nil, fmt.Errorf("sandbox setup: %w", err)
	}
	defer root.close()
	if err := runSteps(cs, root, sources); err != nil {
		return nil, err
	}
	if err := r.cleanup(root); err != nil {
		return nil, fmt.Errorf("after the steps: %w", err)
	}
	if cs.Finish == nil {
		return nil, nil
	}
	// Back to the host's view (M0) for the finisher; the pivoted
	// namespace dies with the last reference.
	if err := unix.Setns(m0, unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("finish: setns: %w", err)
	}
	if err := unix.Unmount(cs.Rootfs, unix.MNT_DETACH); err != nil {
		return nil, fmt.Errorf("finish: unmount rootfs: %w", err)
	}
	fn, _ := lookupFinisher(cs.Finish.Name)
	out, err := fn(context.Background(), cs.Upper, cs.Finish.Arg)
	if err != nil {
		return nil, fmt.Errorf("finisher %s: %w", cs.Finish.Name, err)
	}
	return out, nil
}

// setupSandbox builds the container in M0, then pivots into it in a new
// mount namespace M1 on this thread, returning an fd of M0 to go back to.
func setupSandbox(cs *childSpec) (*rootfs, int, map[int]*copySource, error) {
	// Nothing we mount may propagate to the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return nil, -1, nil, fmt.Errorf("make / rslave: %w", err)
	}
	host := cs.Name
	if len(host) > 64 {
		host = host[:64]
	}
	if err := unix.Sethostname([]byte(host)); err != nil {
		return nil, -1, nil, fmt.Errorf("sethostname: %w", err)
	}
	hs, err := cloneHostSources(cs)
	if err != nil {
		return nil, -1, nil, err
	}
	sources, err := openCopySources(cs)
	if err != nil {
		return nil, -1, nil, err
	}
	if err := mountOverlay(cs.Lowers, cs.Upper, cs.Work, cs.Rootfs, cs.Rootless); err != nil {
		return nil, -1, nil, err
	}
	r := &rootfs{dir: cs.Rootfs, ttyGID: cs.TTYGroup}
	if r.fd, err = unix.Open(cs.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return nil, -1, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return nil, -1, nil, err
	}
	r.dev = st.Dev
	if err := r.setup(cs, hs); err != nil {
		return nil, -1, nil, err
	}
	m0, err := unix.Open("/proc/self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, -1, nil, err
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return nil, -1, nil, fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, -1, nil, fmt.Errorf("make / private: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on the new one; detaching
	// it leaves no path back to the host file system.
	if err := unix.Chdir(cs.Rootfs); err != nil {
		return nil, -1, nil, err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return nil, -1, nil, fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return nil, -1, nil, fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return nil, -1, nil, err
	}
	return r, m0, sources, nil
}

// runSteps runs the steps in order in the pivoted rootfs.
func runSteps(cs *childSpec, root *inRoot, sources map[int]*copySource) error {
	if _, err := root.stat(cs.WorkDir); errors.Is(err, unix.ENOENT) {
		if err := root.mkdirAll(cs.WorkDir, 0o755); err != nil {
			return fmt.Errorf("workdir: %w", err)
		}
	}
	lastRun := -1
	for i, st := range cs.Steps {
		if st.Copy == nil {
			lastRun = i // a script or a direct command
		}
	}
	devNull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sandbox setup: /dev/null: %w", err)
	}
	defer unix.Close(devNull)
	for i, st := range cs.Steps {
		if st.Copy != nil {
			if err := sources[i].copyTo(root, st.Copy); err != nil {
				return fmt.Errorf("%s: copy %s to %s: %w", stepName(i, st.Where), st.Copy.Source, st.Copy.Dest, err)
			}
			continue
		}
		if err := runStep(cs, root, i, st, devNull, cs.Interactive && i == lastRun); err != nil {
			return err
		}
	}
	return nil
}

// runStep runs one script as a child of pid 1, then kills whatever it left
// running in the pid namespace.
func runStep(cs *childSpec, root *inRoot, i int, st childStep, devNull int, interactive bool) error {
	argv := []string{"/bin/sh", "-xe", st.Script}
	if st.Shebang {
		argv = []string{st.Script}
	}
	var cred *syscall.Credential
	if len(st.Argv) > 0 {
		argv = append([]string(nil), st.Argv...)
		path, err := lookPath(root, argv[0], cs.Env, cs.WorkDir)
		if err != nil {
			return &StepError{Index: i, Where: st.Where, ExitCode: 127, Message: err.Error()}
		}
		argv[0] = path
		if cs.User != "" {
			if cred, err = resolveUser(root, cs.User); err != nil {
				return fmt.Errorf("%s: user %q: %w", stepName(i, st.Where), cs.User, err)
			}
		}
	}
	files := []uintptr{uintptr(devNull), 1, 2}
	var con *console
	if interactive && isTerminal(0) && !cs.Background {
		uid, gid := 0, 0
		if cred != nil {
			uid, gid = int(cred.Uid), int(cred.Gid)
		}
		var err error
		if con, err = openConsole(root, uid, gid); err != nil {
			return fmt.Errorf("%s: %w", stepName(i, st.Where), err)
		}
		defer con.close()
		files = con.files()
	} else if interactive {
		out, errOut, done, err := guardTerminals()
		defer done()
		if err != nil {
			return fmt.Errorf("%s: %w", stepName(i, st.Where), err)
		}
		files = []uintptr{0, out, errOut}
		if cs.Background {
			files[0] = uintptr(devNull)
		}
	}
	ids, err := identityMaps()
	if err != nil {
		return fmt.Errorf("%s: %w", stepName(i, st.Where), err)
	}
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Dir:   cs.WorkDir,
		Env:   cs.Env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			// Every step leads a session of its own, without the
			// caller's terminal: one with a console has the console as
			// its controlling terminal.
			Setsid:     true,
			Setctty:    con != nil,
			Ctty:       0,
			Credential: cred,
			// The step runs in a user namespace of its own that maps
			// every id to itself, with its own copy of the mount
			// namespace. Ids, owners and files are exactly what they
			// were, but its capabilities hold only there: the kernel
			// locks the copied mounts (a read-only bind, /sys or
			// /proc/sys cannot be made writable or unmounted), and
			// nothing that needs privilege over the host (mknod of a
			// device, mounting a disk, open_by_handle_at, sysctls,
			// configuring the host's network) is allowed, even when
			// strata runs as root.
			Cloneflags:                 unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
			UidMappings:                ids.uids,
			GidMappings:                ids.gids,
			GidMappingsEnableSetgroups: true,
		},
	})
	if err != nil {
		return fmt.Errorf("%s: start %s: %w", stepName(i, st.Where), argv[0], err)
	}
	if interactive && con == nil {
		// The step leads its own session, away from the terminal that
		// delivers Ctrl-C and Ctrl-\ to this process: pass them on.
		stop := forwardSignals(pid)
		defer stop()
	}
	ws := reapUntil(pid)
	killAll()
	if con != nil {
		con.finish()
	}
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case ws.Signaled():
		return &StepError{Index: i, Where: st.Where, ExitCode: -1, Signal: unix.SignalName(ws.Signal())}
	default:
		return &StepError{Index: i, Where: st.Where, ExitCode: ws.ExitStatus()}
	}
}

// forwardSignals sends SIGINT and SIGQUIT this process gets to the process
// group of pid until stop is called.
func forwardSignals(pid int) (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, unix.SIGINT, unix.SIGQUIT)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				unix.Kill(-pid, sig.(unix.Signal))
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}

// idMaps are the uid and gid maps of a step's user namespace.
type idMaps struct{ uids, gids []syscall.SysProcIDMap }

// identityMaps map every id of this user namespace to itself, extent by
// extent: all ids as root, the caller and its subordinate ids rootless.
// They are read once: the sandbox's own maps do not change.
var identityMaps = sync.OnceValues(func() (idMaps, error) {
	read := func(file string) ([]syscall.SysProcIDMap, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var m []syscall.SysProcIDMap
		for line := range strings.Lines(string(b)) {
			var inside, outside, size int
			if _, err := fmt.Sscan(line, &inside, &outside, &size); err != nil {
				return nil, fmt.Errorf("%s: %q: %w", file, line, err)
			}
			m = append(m, syscall.SysProcIDMap{ContainerID: inside, HostID: inside, Size: size})
		}
		return m, nil
	}
	uids, err := read("/proc/self/uid_map")
	if err != nil {
		return idMaps{}, err
	}
	gids, err := read("/proc/self/gid_map")
	return idMaps{uids, gids}, err
})

// reapUntil reaps children, including orphans re-parented to pid 1, until
// pid exits, and returns its status.
func reapUntil(pid int) unix.WaitStatus {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || got == pid {
			return ws
		}
	}
}

// killAll kills every other process of the pid namespace (kill(-1) from its
// init) and reaps them, so that a daemon a step started cannot outlive it.
func killAll() {
	unix.Kill(-1, unix.SIGKILL)
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: none left
			return
		}
	}
}
