package runtime

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// console serialises whole lines from many images onto one writer, so
// parallel builds never interleave within a line. While a shell on
// failure owns the terminal, the lines of the other images are held back
// and written when it exits, so that they do not land in the middle of
// the user's session (an image's base finishing its encode, say).
type console struct {
	mu   sync.Mutex
	out  io.Writer
	held *bytes.Buffer // nil unless a shell is open
	lost int           // bytes dropped beyond maxHeld
}

// maxHeld bounds what a long shell session holds back; the per-image logs
// under the store keep everything.
const maxHeld = 4 << 20

// w is where lines go now; c.mu is held.
func (c *console) w() io.Writer {
	if c.held == nil {
		return c.out
	}
	return heldWriter{c}
}

type heldWriter struct{ c *console }

func (h heldWriter) Write(p []byte) (int, error) {
	if h.c.held.Len()+len(p) > maxHeld {
		h.c.lost += len(p)
		return len(p), nil
	}
	return h.c.held.Write(p)
}

// hold starts holding lines back; release writes them out.
func (c *console) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = new(bytes.Buffer)
}

func (c *console) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		return
	}
	c.out.Write(c.held.Bytes())
	if c.lost > 0 {
		fmt.Fprintf(c.out, "(%d bytes of build output written while the shell was open were not shown: see the logs in the store)\n", c.lost)
	}
	c.held, c.lost = nil, 0
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w(), format, args...)
}

// prefixWriter writes each complete line as "name | line" and keeps the
// last lines so that a failure can show what led to it.
type prefixWriter struct {
	c      *console
	prefix string
	buf    []byte
	tail   [][]byte
	keep   int
}

func newPrefixWriter(c *console, name string, keep int) *prefixWriter {
	return &prefixWriter{c: c, prefix: name + " | ", keep: keep}
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *prefixWriter) emit(line []byte) {
	fmt.Fprintf(w.c.w(), "%s%s\n", w.prefix, line)
	w.tail = append(w.tail, append([]byte(nil), line...))
	if len(w.tail) > w.keep {
		w.tail = w.tail[len(w.tail)-w.keep:]
	}
}

// Flush writes a trailing partial line.
func (w *prefixWriter) Flush() {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

// Tail returns the last lines written.
func (w *prefixWriter) Tail() []string {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	out := make([]string, len(w.tail))
	for n, l := range w.tail {
		out[n] = string(l)
	}
	return out
}
