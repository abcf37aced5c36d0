package layer

// The tar stream is generated here rather than with umoci's generator:
// umoci's layer.GenerateLayer needs a go-mtree diff of the whole rootfs
// against a stored manifest, i.e. a walk of the base as well. Strata already
// has the exact change set in the overlay upper dir, so it walks only that
// and translates overlay whiteouts itself.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// readAheadBudget bounds the memory of file contents read ahead of the tar
// writer. A few MiB keep the readers hundreds of small files ahead, which
// is all the overlap there is to gain once the tree is in the page cache.
const readAheadBudget = 4 << 20

// readAheadMax is the largest file read ahead. Opening and reading a small
// file costs more than compressing it, so those are what the readers take
// off the tar writer; a bigger file is read by the writer itself through
// one buffer. Heads of big files read ahead (up to readChunk, in a pool
// per power-of-two size) made the pools hold 15 MiB for a 4 MiB budget
// on /usr/lib.
const readAheadMax = 64 << 10

// tarStream walks root and writes its tar stream to out. File contents are
// read ahead by a pool of readers within a fixed memory budget while the
// walker keeps going, so the walk, the reads and the tar writing overlap.
// It returns the number of entries written.
//
// When pipe is not nil the stream goes to that pipe instead of out, and file
// contents are spliced into it from the page cache without being copied
// through user space (squashfs layers, whose consumer is mksquashfs).
func tarStream(ctx context.Context, root string, form outputForm, opts WriteOptions, out io.Writer, pipe *pipeOut) (n int, err error) {
	if pipe != nil {
		n, err = entryStream(ctx, root, form, opts, true, func(ordered <-chan *entry, _ *contents) (int, error) {
			return pipe.stream(ctx, ordered)
		})
		if err != nil {
			return n, err
		}
		return n, pipe.finish()
	}
	tw := tar.NewWriter(out)
	n, err = entryStream(ctx, root, form, opts, false, func(ordered <-chan *entry, c *contents) (n int, err error) {
		var stream []byte
		for e := range ordered {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if err := tw.WriteHeader(e.hdr); err != nil {
				return n, fmt.Errorf("tar header for %s: %w", e.hdr.Name, err)
			}
			n++
			if e.pf == nil {
				continue
			}
			if stream == nil && e.pf.size > readAheadMax {
				stream = make([]byte, readChunk)
			}
			err := writeContent(tw, e.pf, c.pool, stream)
			c.bud.release(e.pf.cost)
			if err != nil {
				return n, err
			}
		}
		return n, nil
	})
	if err != nil {
		return n, err
	}
	if err := tw.Close(); err != nil {
		return n, fmt.Errorf("finish tar: %w", err)
	}
	return n, nil
}

// contents is what a consumer of entryStream reads file contents with: a
// regular file's prefetch holds a head from the pool, whose cost goes back
// to the budget once the consumer is done with it.
type contents struct {
	pool *bufPool
	bud  *budget
}

// entryStream walks root and hands its entries, in stream order, to
// consume, which must take every entry from ordered (writing or
// discarding each prefetch and releasing its cost) until it is closed or
// return an error. File contents are read ahead by a pool of readers
// within a fixed memory budget while the walker keeps going, unless direct
// says the consumer reads every file itself. A walk error is returned
// even when consume, which saw the entries end early, returned none.
func entryStream(ctx context.Context, root string, form outputForm, opts WriteOptions, direct bool, consume func(ordered <-chan *entry, c *contents) (int, error)) (n int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	bud := newBudget(readAheadBudget)
	pool := &bufPool{}
	// The walk may run this many entries ahead of the consumer: headers
	// cost memory too, and readers rarely get further ahead than that.
	ordered := make(chan *entry, 2048)
	work := make(chan *prefetch, 2048)

	var walkErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ordered)
		defer close(work)
		w := newWalker(root, form, opts, func(e *entry) error {
			if pf := e.pf; pf != nil && (direct || pf.size > readAheadMax) {
				pf.done = make(chan struct{})
				close(pf.done) // read by the consumer itself
				pf.fd = -1
			} else if pf != nil {
				pf.done = make(chan struct{})
				// The cost is the pooled buffer's size, not the file's:
				// the budget is then the memory the heads really take.
				_, c := class(int(pf.size))
				pf.cost = int64(c)
				if err := bud.acquire(pf.cost); err != nil {
					return err
				}
				select {
				case work <- pf:
				case <-ctx.Done():
					bud.release(pf.cost)
					return ctx.Err()
				}
			}
			select {
			case ordered <- e:
				return nil
			case <-ctx.Done():
				if e.pf != nil {
					// Queued for a reader but never to be written.
					go func() { e.pf.discard(pool); bud.release(e.pf.cost) }()
				}
				return ctx.Err()
			}
		})
		walkErr = w.walk(ctx)
	})
	nreaders := max(readers, runtime.GOMAXPROCS(0))
	for range nreaders {
		wg.Go(func() {
			for pf := range work {
				pf.load(pool)
			}
		})
	}

	defer func() {
		if err != nil {
			cancel()
			bud.close()
			for e := range ordered {
				if e.pf != nil {
					e.pf.discard(pool)
				}
			}
		}
		wg.Wait()
		if err == nil && walkErr != nil {
			err = walkErr
		}
	}()

	n, err = consume(ordered, &contents{pool: pool, bud: bud})
	if err != nil {
		return n, err
	}
	// A walk error closes ordered early: report it rather than a
	// truncated but well-formed stream.
	wg.Wait()
	if walkErr != nil {
		if errors.Is(walkErr, context.Canceled) && ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, walkErr
	}
	return n, nil
}

// writeContent writes a file to tw: a small one from the memory a reader
// read it into, a bigger one (its fd still -1) streamed through buf.
func writeContent(tw *tar.Writer, pf *prefetch, pool *bufPool, buf []byte) error {
	<-pf.done
	defer pf.discard(pool)
	if pf.err != nil {
		return pf.err
	}
	if pf.buf == nil && pf.fd < 0 {
		fd, err := openNoatime(pf.path)
		if err != nil {
			return fmt.Errorf("open %s: %w", pf.path, err)
		}
		pf.fd = fd // closed by discard
	}
	// Calling Write directly (not io.Copy) keeps reads in our buffers:
	// io.Copy from an *os.File into a tar.Writer would take the WriterTo
	// path and allocate per file.
	if _, err := tw.Write(pf.buf); err != nil {
		return fmt.Errorf("tar %s: %w", pf.path, err)
	}
	for rest := pf.size - int64(len(pf.buf)); rest > 0; {
		b := buf[:min(rest, int64(len(buf)))]
		if err := readFull(pf.fd, b, pf.path); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("tar %s: %w", pf.path, err)
		}
		rest -= int64(len(b))
	}
	// A file that grew after the stat would silently lose its tail.
	var one [1]byte
	if pf.fd >= 0 {
		if k, _ := unix.Read(pf.fd, one[:]); k > 0 {
			return fmt.Errorf("read %s: file grew while being committed", pf.path)
		}
	}
	return nil
}

// contentReader reads a prefetched file for a consumer that pulls its
// content (the squashfs writer): the head a reader loaded, then the rest
// from the file.
type contentReader struct {
	pf   *prefetch
	head []byte
	rest int64
}

// open waits for pf's head and returns a reader of the whole file; the
// caller must close it with c.close whatever happens.
func (c *contents) open(pf *prefetch) (*contentReader, error) {
	<-pf.done
	if pf.err != nil {
		return &contentReader{pf: pf}, pf.err
	}
	if pf.buf == nil && pf.fd < 0 {
		fd, err := openNoatime(pf.path)
		if err != nil {
			return &contentReader{pf: pf}, fmt.Errorf("open %s: %w", pf.path, err)
		}
		pf.fd = fd // closed by discard
	}
	return &contentReader{pf: pf, head: pf.buf, rest: pf.size - int64(len(pf.buf))}, nil
}

func (r *contentReader) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	if r.rest == 0 {
		return 0, io.EOF
	}
	b := p[:min(int64(len(p)), r.rest)]
	if err := readFull(r.pf.fd, b, r.pf.path); err != nil {
		return 0, err
	}
	r.rest -= int64(len(b))
	return len(b), nil
}

// close gives back what the prefetch held and reports a file that grew
// after it was stat'ed, whose tail would otherwise be lost silently.
func (c *contents) close(r *contentReader) error {
	var err error
	var one [1]byte
	if r.pf.fd >= 0 && r.rest == 0 {
		if k, _ := unix.Read(r.pf.fd, one[:]); k > 0 {
			err = fmt.Errorf("read %s: file grew while being committed", r.pf.path)
		}
	}
	r.pf.discard(c.pool)
	c.bud.release(r.pf.cost)
	return err
}
