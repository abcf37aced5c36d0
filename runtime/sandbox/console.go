package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// console is the terminal of an interactive step whose stdin is a
// terminal: a pty pair of the container's own devpts, relayed to the
// caller's terminal by pid 1. The caller's terminal itself never enters the
// container, so a process there cannot push input into it (TIOCSTI), read
// it after the step or change its settings; and the step gets a real
// controlling terminal with job control, named /dev/pts/N. Only the step's
// descriptors that were terminals get the pty: output redirected to a file
// stays byte for byte what the step wrote.
type console struct {
	master, slave *os.File
	host          int // the caller's terminal (stdin)
	out           int // where the step's terminal output goes
	winch         chan os.Signal
	done          chan struct{} // closed when the output relay ends
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// openConsole makes the pty pair and puts the caller's terminal (fd 0) in
// raw mode: keys, Ctrl-C included, go to the step's terminal, whose own
// line discipline handles them. The caller gets its terminal back as it
// was from [Run], which saved it, whatever happens to this process. The master is opened inside the rootfs
// (a step may have replaced /dev/ptmx by a symlink), the slave through
// the master, and the slave is given to uid:gid.
func openConsole(root *inRoot, uid, gid int) (*console, error) {
	mfd, err := root.open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("console: /dev/ptmx: %w", err)
	}
	c := &console{master: os.NewFile(uintptr(mfd), "ptmx"), host: 0, out: 0}
	for _, fd := range []int{1, 2} {
		if isTerminal(fd) {
			c.out = fd
			break
		}
	}
	fail := func(err error) (*console, error) {
		c.close()
		return nil, fmt.Errorf("console: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return fail(errno)
	}
	c.slave = os.NewFile(sfd, "pts")
	if err := unix.Fchown(int(sfd), uid, gid); err != nil {
		return fail(err)
	}
	c.resize()
	raw, err := unix.IoctlGetTermios(c.host, unix.TCGETS)
	if err != nil {
		return fail(err)
	}
	// cfmakeraw(3)
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(c.host, unix.TCSETS, raw); err != nil {
		return fail(err)
	}
	c.winch = make(chan os.Signal, 1)
	signal.Notify(c.winch, unix.SIGWINCH)
	go func() {
		for range c.winch {
			c.resize()
		}
	}()
	// Input: stays blocked on the caller's terminal after the step, until
	// this process exits; nothing waits for it.
	go io.Copy(c.master, os.Stdin) // fd 0, c.host
	c.done = make(chan struct{})
	go func() {
		// Ends with EIO once no process holds the slave any more.
		io.Copy(fdWriter(c.out), c.master)
		close(c.done)
	}()
	return c, nil
}

// files are the step's stdin, stdout and stderr: the slave where the
// caller has a terminal, the caller's descriptor where it does not.
func (c *console) files() []uintptr {
	f := []uintptr{c.slave.Fd(), 1, 2}
	for _, fd := range []int{1, 2} {
		if isTerminal(fd) {
			f[fd] = c.slave.Fd()
		}
	}
	return f
}

// resize gives the step's terminal the caller's window size.
func (c *console) resize() {
	if ws, err := unix.IoctlGetWinsize(c.host, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(c.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// finish waits for the step's last output. Call it after every process of
// the step is gone.
func (c *console) finish() {
	c.slave.Close()
	c.slave = nil
	select {
	case <-c.done:
	case <-time.After(5 * time.Second): // nothing should still hold the slave
	}
	c.close()
}

func (c *console) close() {
	if c.winch != nil {
		signal.Stop(c.winch)
		close(c.winch)
		c.winch = nil
	}
	if c.slave != nil {
		c.slave.Close()
	}
	c.master.Close()
}

// guardTerminals returns the step's stdout and stderr: fds 1 and 2
// themselves, or for those that are terminals the write end of a pipe that
// pid 1 copies to them (one pipe when both are the same terminal, so that
// their lines stay in order). A step without a console must never hold the
// caller's terminal: it could set its modes, or read the keys typed while
// it runs. done closes pid 1's write ends and waits for the copies; call
// it once the step is gone, or on any error.
func guardTerminals() (out, errOut uintptr, done func(), err error) {
	var waits []func()
	done = func() {
		for _, w := range waits {
			w()
		}
	}
	pipeTo := func(fd int) (uintptr, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		copied := make(chan struct{})
		go func() {
			io.Copy(fdWriter(fd), r)
			r.Close()
			close(copied)
		}()
		waits = append(waits, func() {
			w.Close()
			<-copied
		})
		return w.Fd(), nil
	}
	out, errOut = 1, 2
	if isTerminal(1) {
		if out, err = pipeTo(1); err != nil {
			return 0, 0, done, err
		}
	}
	if isTerminal(2) {
		if sameFile(1, 2) && out != 1 {
			errOut = out
		} else if errOut, err = pipeTo(2); err != nil {
			return 0, 0, done, err
		}
	}
	return out, errOut, done, nil
}

// sameFile reports whether two descriptors are the same file.
func sameFile(a, b int) bool {
	var sa, sb unix.Stat_t
	return unix.Fstat(a, &sa) == nil && unix.Fstat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino && sa.Rdev == sb.Rdev
}

// fdWriter writes to a descriptor that an *os.File must not own (closing
// it, or its finalizer, would close the caller's stdout). A terminal left
// non-blocking by the caller is waited for rather than given up on.
type fdWriter int

func (f fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(f), p[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			unix.Poll([]unix.PollFd{{Fd: int32(f), Events: unix.POLLOUT}}, -1)
			continue
		case err != nil:
			return n, err
		}
		n += m
	}
	return n, nil
}

// terminalState is the settings of the caller's terminals, restored after
// an interactive sandbox whatever happened to it: the console's raw mode
// must not outlive it, even when the sandbox was killed.
type terminalState struct {
	fds   []int
	saved []*unix.Termios
}

func saveTerminals(files ...any) *terminalState {
	ts := &terminalState{}
	for _, f := range files {
		if f, ok := f.(*os.File); ok && f != nil {
			if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
				ts.fds, ts.saved = append(ts.fds, int(f.Fd())), append(ts.saved, t)
			}
		}
	}
	return ts
}

func (ts *terminalState) restore() {
	for i, fd := range ts.fds {
		unix.IoctlSetTermios(fd, unix.TCSETS, ts.saved[i])
	}
}

// inBackground reports whether stdin is a terminal whose foreground job is
// not this process's. Only the caller can tell: in the sandbox's pid
// namespace both process groups read as 0.
func inBackground(stdin any) bool {
	f, ok := stdin.(*os.File)
	if !ok || f == nil || !isTerminal(int(f.Fd())) {
		return false
	}
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && pgrp != unix.Getpgrp()
}
