package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"golang.org/x/sys/unix"
)

// console is the terminal of an interactive step: a pty pair of the
// container's own devpts, relayed to the caller's terminal by pid 1. The
// caller's terminal itself never enters the container, so a process there
// cannot push input into it (TIOCSTI) or change its settings; and the step
// gets a real controlling terminal with job control, named /dev/pts/N.
type console struct {
	master, slave *os.File
	host          int // the caller's terminal (stdin)
	saved         *unix.Termios
	winch         chan os.Signal
	out           chan struct{} // closed when the output relay ends
}

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// openConsole makes the pty pair in the pivoted rootfs and puts the
// caller's terminal (fd 0) in raw mode: keys, Ctrl-C included, go to the
// step's terminal, whose own line discipline handles them.
func openConsole() (*console, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c := &console{master: m, host: 0}
	fail := func(err error) (*console, error) {
		c.close()
		return nil, fmt.Errorf("console: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail(err)
	}
	if c.slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err != nil {
		return fail(err)
	}
	c.resize()
	saved, err := unix.IoctlGetTermios(c.host, unix.TCGETS)
	if err != nil {
		return fail(err)
	}
	raw := *saved
	// cfmakeraw(3)
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(c.host, unix.TCSETS, &raw); err != nil {
		return fail(err)
	}
	c.saved = saved
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
	c.out = make(chan struct{})
	go func() {
		// Ends with EIO once no process holds the slave any more.
		io.Copy(os.Stdout, c.master)
		close(c.out)
	}()
	return c, nil
}

// resize gives the step's terminal the caller's window size.
func (c *console) resize() {
	if ws, err := unix.IoctlGetWinsize(c.host, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(c.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// finish waits for the step's last output and gives the caller its
// terminal back as it was. Call it after every process of the step is gone.
func (c *console) finish() {
	c.slave.Close()
	c.slave = nil
	<-c.out
	c.close()
}

func (c *console) close() {
	if c.winch != nil {
		signal.Stop(c.winch)
		close(c.winch)
		c.winch = nil
	}
	if c.saved != nil {
		unix.IoctlSetTermios(c.host, unix.TCSETS, c.saved)
		c.saved = nil
	}
	if c.slave != nil {
		c.slave.Close()
	}
	c.master.Close()
}

// guardTerminal returns fd for a step to write to: fd itself, or when fd
// is a terminal the write end of a pipe that pid 1 copies to it. A step
// without a console must never hold the caller's terminal: it could set
// its modes, or read the keys typed while it runs. done closes pid 1's
// write end and waits for the copy; call it once the step is gone.
func guardTerminal(fd int) (stepFd int, done func(), err error) {
	if !isTerminal(fd) {
		return fd, func() {}, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return -1, nil, err
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(fdWriter(fd), r)
		r.Close()
		close(copied)
	}()
	return int(w.Fd()), func() {
		w.Close()
		<-copied
	}, nil
}

// fdWriter writes to a descriptor that an *os.File must not own (closing
// it, or its finalizer, would close the caller's stdout).
type fdWriter int

func (f fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(f), p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// terminalState is the settings of the caller's terminals, restored after
// an interactive sandbox whatever happened to it (a sandbox killed with
// strata leaves its console's raw mode behind otherwise).
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
