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
