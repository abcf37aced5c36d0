//go:build mage

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// strataRun is one `strata build` the fault target started: its output,
// line by line with the time each line arrived, so a trial can aim a
// signal at a phase the build announces by its lines.
type strataRun struct {
	cmd   *exec.Cmd
	args  []string // as started, for messages and reproduction
	start time.Time
	done  chan struct{} // closed once the process is reaped
	err   error         // from Wait; read after done

	mu      sync.Mutex
	lines   []string
	seen    map[string]time.Duration // first arrival of a line starting with each watched prefix
	waiting map[string]chan struct{}
	readEOF chan struct{}
}

// startStrata starts bin/strata with args in the definitions folder,
// watching for lines that start with one of watch. Its output goes to a pipe rather than
// the terminal: a trial reads the phases from it, and a process of the
// build that outlives strata shows up as a writer still holding it.
func (f *faultRun) startStrata(ctx context.Context, args []string, watch ...string) (*strataRun, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, f.strata, args...)
	cmd.Dir = f.defs
	cmd.Env = append(os.Environ(), f.env...)
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group: a Ctrl-C on the terminal running mage must
	// not reach strata as a second, unplanned signal; the trial decides
	// what strata receives.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	run := &strataRun{cmd: cmd, args: args, done: make(chan struct{}), seen: map[string]time.Duration{},
		waiting: map[string]chan struct{}{}, readEOF: make(chan struct{})}
	for _, l := range watch {
		run.waiting[l] = make(chan struct{})
	}
	run.start = time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	w.Close()
	go run.read(r)
	go func() {
		run.err = cmd.Wait()
		close(run.done)
		// Whatever still holds the pipe once strata is gone is a process
		// of the build that outlived it; the leftover check names it, and
		// the reader must not wait for it forever.
		select {
		case <-run.readEOF:
		case <-time.After(3 * time.Second):
			r.Close()
		}
	}()
	return run, nil
}

func (run *strataRun) read(r *os.File) {
	defer close(run.readEOF)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		at := time.Since(run.start)
		run.mu.Lock()
		run.lines = append(run.lines, line)
		for w, ch := range run.waiting {
			if _, dup := run.seen[w]; !dup && strings.HasPrefix(line, w) {
				run.seen[w] = at
				close(ch)
			}
		}
		run.mu.Unlock()
	}
}

// seenAt reports when a line starting with prefix (one of those
// watched) first arrived, since the start of the run.
func (run *strataRun) seenAt(prefix string) (time.Duration, bool) {
	run.mu.Lock()
	defer run.mu.Unlock()
	at, ok := run.seen[prefix]
	return at, ok
}

// waitLine waits for a line starting with prefix (one of those
// watched); false when strata ended without printing one.
func (run *strataRun) waitLine(prefix string) bool {
	select {
	case <-run.waiting[prefix]:
		return true
	case <-run.done:
		// The line may still be in the pipe; the reader ends at most a
		// few seconds after strata (see startStrata).
		<-run.readEOF
		_, ok := run.seenAt(prefix)
		return ok
	}
}

// signal sends sig to strata alone (as kill(1) or a service manager
// would), unless it has already exited: a zombie still accepts kill(2)
// without effect, so the state in /proc decides whether the signal met
// a live process.
func (run *strataRun) signal(sig syscall.Signal) (bool, error) {
	select {
	case <-run.done:
		return false, nil
	default:
	}
	pid := run.cmd.Process.Pid
	if st, err := procState(pid); err != nil || st == 'Z' || st == 'X' {
		return false, nil
	}
	if err := syscall.Kill(pid, sig); err != nil {
		if err == syscall.ESRCH {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// wait waits for strata to exit, killing it after limit: a build that
// does not stop is a finding of its own (hung).
func (run *strataRun) wait(limit time.Duration) (hung bool) {
	select {
	case <-run.done:
	case <-time.After(limit):
		hung = true
		syscall.Kill(run.cmd.Process.Pid, syscall.SIGKILL)
		<-run.done
	}
	<-run.readEOF
	return hung
}

// status describes how strata ended: "exit N" or "killed by SIGNAL".
func (run *strataRun) status() (ws syscall.WaitStatus, text string) {
	ws = run.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return ws, "killed by " + sigName(ws.Signal())
	}
	return ws, fmt.Sprintf("exit %d", ws.ExitStatus())
}

// output is everything strata printed.
func (run *strataRun) output() string {
	run.mu.Lock()
	defer run.mu.Unlock()
	return strings.Join(run.lines, "\n")
}

// tail is the last n lines strata printed, for messages.
func (run *strataRun) tail(n int) string {
	run.mu.Lock()
	defer run.mu.Unlock()
	l := run.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return "\t" + strings.Join(l, "\n\t")
}

// commandLine is the run as a shell command, for reproducing a failure.
func (f *faultRun) commandLine(args []string) string {
	return fmt.Sprintf("(cd %s && %s %s %s)", f.defs, strings.Join(f.env, " "), f.strata, strings.Join(args, " "))
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// procState is the state letter of /proc/PID/stat (R, S, D, Z, ...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold anything, spaces
	// and parentheses included: the state follows the last ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return b[i+2], nil
}
