package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	// readChunk is the most of one file read ahead of the tar writer; the
	// rest of a bigger file is streamed by the writer in chunks this size.
	readChunk = 1 << 20
	// readers is the number of goroutines reading files ahead. More than
	// the CPU count pays off when the tree is not in the page cache.
	readers = 8
)

// prefetch is the content of one regular file, read by a reader goroutine
// before the tar writer needs it.
type prefetch struct {
	path string
	size int64

	done chan struct{}
	buf  []byte // the first min(size, readChunk) bytes
	fd   int    // open while more than buf remains to be read, else -1
	cost int64
	err  error
}

// budget is a weighted semaphore over bytes of read-ahead. Acquire is only
// ever called by the walker, in stream order, and release by the tar writer
// in the same order, so the oldest entry always gets its bytes first and the
// pipeline cannot deadlock.
type budget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	free   int64
	closed bool
}

func newBudget(n int64) *budget {
	b := &budget{free: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return context.Canceled
	}
	b.free -= n
	return nil
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// close wakes and fails every waiter; used when the pipeline stops.
func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// bufPool recycles read buffers in power-of-two size classes from 4 KiB up
// to readChunk, so small files do not each allocate.
type bufPool struct{ classes [9]sync.Pool }

func class(n int) (idx, size int) {
	size = 4 << 10
	for size < n {
		size <<= 1
		idx++
	}
	return idx, size
}

func (p *bufPool) get(n int) []byte {
	i, size := class(n)
	if b, ok := p.classes[i].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, size)
}

func (p *bufPool) put(b []byte) {
	i, size := class(cap(b))
	if size != cap(b) {
		return
	}
	b = b[:cap(b)]
	p.classes[i].Put(&b)
}

// openNoatime opens a file for reading without updating its atime where the
// caller may (owner or CAP_FOWNER), falling back to a plain open.
func openNoatime(p string) (int, error) {
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME, 0)
		if errors.Is(err, unix.EPERM) {
			fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// readFull fills b from fd, failing if the file is shorter than expected
// (it changed after it was stat'ed).
func readFull(fd int, b []byte, p string) error {
	for off := 0; off < len(b); {
		n, err := unix.Read(fd, b[off:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if n == 0 {
			return fmt.Errorf("read %s: %w (file shrank while being committed)", p, io.ErrUnexpectedEOF)
		}
		off += n
	}
	return nil
}

// load reads the head of the file (all of it when small). It runs on a
// reader goroutine.
func (pf *prefetch) load(pool *bufPool) {
	defer close(pf.done)
	pf.fd = -1
	fd, err := openNoatime(pf.path)
	if err != nil {
		pf.err = fmt.Errorf("open %s: %w", pf.path, err)
		return
	}
	pf.buf = pool.get(int(min(pf.size, readChunk)))
	if err := readFull(fd, pf.buf, pf.path); err != nil {
		unix.Close(fd)
		pf.err = err
		return
	}
	if pf.size > readChunk {
		pf.fd = fd // the tar writer streams the rest
		return
	}
	unix.Close(fd)
}

// discard releases what a prefetch holds, for entries never written.
func (pf *prefetch) discard(pool *bufPool) {
	<-pf.done
	if pf.fd >= 0 {
		unix.Close(pf.fd)
		pf.fd = -1
	}
	if pf.buf != nil {
		pool.put(pf.buf)
		pf.buf = nil
	}
}
