package layer

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// chunkSize is the unit in which the uncompressed tar stream is handed to
// the hasher and the compressor.
const chunkSize = 256 << 10

// chunks bounds the uncompressed stream buffered between the tar writer and
// its two consumers (2 MiB): the compressors keep their own input blocks,
// so more here only holds memory without letting anything run sooner.
const chunks = 8

// chunk is a piece of the uncompressed stream shared by the hasher and the
// compressor; the last one to release it returns it to the free list.
type chunk struct {
	b    []byte
	refs atomic.Int32
	free chan *chunk
}

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		c.b = c.b[:0]
		c.free <- c
	}
}

// group runs goroutines and keeps the first error, cancelling the rest.
type group struct {
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err; g.cancel() })
		}
	})
}

func (g *group) Wait() error {
	g.wg.Wait()
	return g.err
}

// writerFunc is an io.Writer made of its Write method: a writer that
// must stop when a context ends is a closure over it, not a struct
// holding it.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// fanout cuts the tar stream into chunks and hands each to both the
// uncompressed hasher and the compressor, which run in their own
// goroutines so tar writing, hashing and compression overlap.
type fanout struct {
	cur  *chunk
	free chan *chunk
	outs []chan *chunk
}

func newFanout(outs ...chan *chunk) *fanout {
	f := &fanout{free: make(chan *chunk, chunks), outs: outs}
	for range chunks {
		f.free <- &chunk{free: f.free}
	}
	return f
}

// writer returns the fanout as the io.Writer of the tar stream; a write
// waiting for a free chunk or a consumer stops when ctx ends.
func (f *fanout) writer(ctx context.Context) io.Writer {
	return writerFunc(func(p []byte) (int, error) { return f.write(ctx, p) })
}

func (f *fanout) write(ctx context.Context, p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if f.cur == nil {
			select {
			case f.cur = <-f.free:
			case <-ctx.Done():
				return n - len(p), ctx.Err()
			}
			if f.cur.b == nil {
				f.cur.b = make([]byte, 0, chunkSize)
			}
		}
		k := copy(f.cur.b[len(f.cur.b):cap(f.cur.b)], p)
		f.cur.b = f.cur.b[:len(f.cur.b)+k]
		p = p[k:]
		if len(f.cur.b) == cap(f.cur.b) {
			if err := f.flush(ctx); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (f *fanout) flush(ctx context.Context) error {
	c := f.cur
	f.cur = nil
	if c == nil || len(c.b) == 0 {
		return nil
	}
	c.refs.Store(int32(len(f.outs)))
	for _, out := range f.outs {
		select {
		case out <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// close sends the last partial chunk and ends the consumers' streams.
func (f *fanout) close(ctx context.Context) error {
	err := f.flush(ctx)
	for _, out := range f.outs {
		close(out)
	}
	return err
}

// hashChunks hashes a chunk stream (the uncompressed tar: the diffID).
func hashChunks(in <-chan *chunk, h hash.Hash) {
	for c := range in {
		h.Write(c.b)
		c.release()
	}
}

// sinkBufSize and sinkBufs bound the compressed stream held between the
// compressor and the goroutine that hashes and stores it: enough for the
// compressor never to wait while the file write catches up, without
// keeping a copy of every block the compressor hands over at once.
const (
	sinkBufSize = 256 << 10
	sinkBufs    = 4
)

// asyncSink is the compressor's output: it copies what it gets into a
// fixed set of buffers and hands them to a goroutine that hashes them and
// writes them to the blob file, so the compressor rarely waits for either.
type asyncSink struct {
	ch   chan []byte
	free chan []byte
	done chan struct{}
	h    hash.Hash
	w    io.Writer
	size int64
	err  error
}

func newAsyncSink(w io.Writer) *asyncSink {
	s := &asyncSink{ch: make(chan []byte, sinkBufs), free: make(chan []byte, sinkBufs),
		done: make(chan struct{}), h: sha256.New(), w: w}
	for range sinkBufs {
		s.free <- nil // allocated on first use: a small layer needs one
	}
	go s.run()
	return s
}

func (s *asyncSink) run() {
	defer close(s.done)
	for b := range s.ch {
		if s.err == nil {
			s.h.Write(b)
			var n int
			n, s.err = s.w.Write(b)
			s.size += int64(n)
		}
		s.free <- b[:0]
	}
}

// writer returns the sink as the compressor's io.Writer; a write waiting
// for a free buffer stops when ctx ends.
func (s *asyncSink) writer(ctx context.Context) io.Writer {
	return writerFunc(func(p []byte) (int, error) { return s.write(ctx, p) })
}

func (s *asyncSink) write(ctx context.Context, p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		var b []byte
		select {
		case b = <-s.free:
		case <-ctx.Done():
			return n - len(p), ctx.Err()
		}
		if b == nil {
			b = make([]byte, 0, sinkBufSize)
		}
		k := min(len(p), sinkBufSize)
		b = append(b, p[:k]...)
		p = p[k:]
		s.ch <- b // never blocks: at most sinkBufs buffers exist
	}
	return n, nil
}

// Close waits for everything written to be hashed and stored.
func (s *asyncSink) Close() error {
	close(s.ch)
	<-s.done
	return s.err
}
