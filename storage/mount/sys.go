package mount

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/mountinfo"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	Target, FSType, Source string
}

// mounts reads the mount table of this process's mount namespace.
func mounts() ([]mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT TARGET OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		out = append(out, mountEntry{Target: mountinfo.Unescape(f[4]), FSType: f[sep+1], Source: mountinfo.Unescape(f[sep+2])})
	}
	return out, sc.Err()
}

// mountedAt returns the file system type of the topmost mount on target,
// or "" when nothing is mounted there.
func mountedAt(target string) (string, error) {
	ms, err := mounts()
	if err != nil {
		return "", err
	}
	fsType := ""
	for _, m := range ms {
		if m.Target == target {
			fsType = m.FSType
		}
	}
	return fsType, nil
}

// waitMounted polls the mount table until target shows a mount of fsType,
// for a FUSE daemon that mounts once it has started; it fails early when
// the daemon exits.
func waitMounted(ctx context.Context, target, fsType string, exited <-chan struct{}) error {
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		got, err := mountedAt(target)
		if err != nil {
			return err
		}
		if got == fsType {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return fmt.Errorf("exited before mounting")
		case <-time.After(delay):
		}
	}
}

// unmountOne takes down one mount of the record unless it is already
// gone (or replaced by someone else's), and then waits for its FUSE
// daemon, if any, to exit.
func unmountOne(ctx context.Context, m mountRecord) error {
	got, err := mountedAt(m.Target)
	if err != nil {
		return err
	}
	if got == m.FSType {
		if m.FUSE != nil {
			err = fusermount(ctx, m.Target)
		} else if err = unix.Unmount(m.Target, 0); err != nil {
			err = fmt.Errorf("unmount %s: %w", m.Target, err)
		}
		if err != nil {
			return err
		}
	}
	if m.FUSE != nil {
		return stopProc(ctx, *m.FUSE)
	}
	return nil
}

// fusermount unmounts a FUSE mount the way its unprivileged owner can; a
// mount whose daemon died is detached lazily when the plain unmount fails.
func fusermount(ctx context.Context, target string) error {
	out, err := exec.CommandContext(ctx, "fusermount3", "-u", target).CombinedOutput()
	if err == nil {
		return nil
	}
	if got, _ := mountedAt(target); got == "" {
		return nil
	}
	out2, err2 := exec.CommandContext(ctx, "fusermount3", "-u", "-z", target).CombinedOutput()
	if err2 != nil {
		return fmt.Errorf("fusermount3 -u %s: %w: %s; with -z: %s", target, err, bytes.TrimSpace(out), bytes.TrimSpace(out2))
	}
	return nil
}

// procStart returns field 22 (start time) and the state of /proc/PID/stat.
func procStart(pid int) (start uint64, st byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// alive reports whether the recorded process still runs (a zombie or a
// new process with the same pid does not count).
func alive(p procRecord) bool {
	start, st, err := procStart(p.PID)
	return err == nil && start == p.Start && st != 'Z' && st != 'X'
}

// stopProc waits for a FUSE daemon to exit after its unmount, and ends it
// when it lingers: it serves nothing any more.
func stopProc(ctx context.Context, p procRecord) error {
	deadline := time.Now().Add(5 * time.Second)
	sig := syscall.Signal(0)
	for alive(p) {
		if time.Now().After(deadline) {
			switch sig {
			case 0:
				sig = unix.SIGTERM
			case unix.SIGTERM:
				sig = unix.SIGKILL
			default:
				return fmt.Errorf("%s (pid %d) does not exit", p.Cmd, p.PID)
			}
			if err := unix.Kill(p.PID, sig); err != nil && err != unix.ESRCH {
				return fmt.Errorf("stop %s (pid %d): %w", p.Cmd, p.PID, err)
			}
			deadline = time.Now().Add(2 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
