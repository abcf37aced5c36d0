package runtime

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// console serialises whole lines from many images onto one writer, so
// parallel builds never interleave within a line.
type console struct {
	mu  sync.Mutex
	out io.Writer
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format, args...)
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
	fmt.Fprintf(w.c.out, "%s%s\n", w.prefix, line)
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
