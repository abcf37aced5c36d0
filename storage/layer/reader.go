package layer

import (
	"context"
	"hash"
	"io"
)

// ReaderWithContext returns a reader of r that fails with ctx's error
// once ctx is done, so that a long copy, download or extraction stops
// soon after it is cancelled.
func ReaderWithContext(ctx context.Context, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

// readerFunc is an io.Reader made of its Read method.
type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// readAhead reads src in a goroutine of its own, in chunks, up to a few
// chunks ahead of its reader, and hashes what it reads into h (if any):
// the unpack's writes then overlap with decompressing and hashing instead
// of waiting for them. src is the goroutine's until Close returns.
type readAhead struct {
	filled chan aheadChunk
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}

	cur     []byte // what is left of the chunk being read
	buf     []byte // that chunk's buffer, returned to free once read
	err     error  // the error that ended the stream, after cur
	stopped bool
}

type aheadChunk struct {
	b   []byte
	err error
}

const (
	aheadSize   = 1 << 20
	aheadChunks = 4
)

func newReadAhead(src io.Reader, h hash.Hash) *readAhead {
	r := &readAhead{
		filled: make(chan aheadChunk, aheadChunks),
		free:   make(chan []byte, aheadChunks),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for range aheadChunks {
		r.free <- make([]byte, aheadSize)
	}
	go r.fill(src, h)
	return r
}

func (r *readAhead) fill(src io.Reader, h hash.Hash) {
	defer close(r.done)
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.stop:
			return
		}
		n, err := io.ReadFull(src, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if h != nil {
			h.Write(buf[:n])
		}
		select {
		case r.filled <- aheadChunk{buf[:n], err}:
		case <-r.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *readAhead) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.buf != nil {
			r.free <- r.buf[:cap(r.buf)] // never blocks: free holds every buffer
			r.buf = nil
		}
		if r.err != nil {
			return 0, r.err
		}
		c := <-r.filled
		r.cur, r.buf, r.err = c.b, c.b, c.err
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Close stops the goroutine and waits for it: src and h are the caller's
// again.
func (r *readAhead) Close() error {
	if !r.stopped {
		r.stopped = true
		close(r.stop)
	}
	<-r.done
	return nil
}
