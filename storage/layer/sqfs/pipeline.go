package sqfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
)

// The data pipeline: Add reads block-size chunks into jobs and queues each
// twice, to the compressors (any order, in parallel) and to the writer (in
// file order), which waits for a job's compression, appends its bytes to
// the file and recycles the job. A fixed set of jobs bounds the data in
// memory to about 2 × block size × jobs, whatever the file sizes. Where
// each block lands depends only on the order of the queue, never on which
// compressor finishes first, so the image is reproducible.

// job is one data or fragment block on its way to the file.
type job struct {
	in   []byte // the block's data
	out  []byte // compressed, or nil: store in as it is
	size uint32 // the block's size field (0 for a hole)
	hole bool   // all zeros: a data block may be left out (sparse)

	file  *fileData // a data block of file, number idx
	idx   int
	frag  *fragment // or a fragment block
	ready chan struct{}
}

func (w *Writer) startPipeline(workers int) {
	n := 2*workers + 2
	w.free = make(chan *job, n)
	w.work = make(chan *job, n)
	w.order = make(chan *job, n)
	w.done = make(chan struct{})
	for range n {
		w.free <- &job{in: make([]byte, 0, w.bs), out: make([]byte, 0, w.bs), ready: make(chan struct{}, 1)}
	}
	for range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for j := range w.work {
				w.compress(j)
				j.ready <- struct{}{}
			}
		}()
	}
	go w.writeLoop()
}

// stopPipeline waits until every queued block is in the file and returns
// the first write error.
func (w *Writer) stopPipeline() error {
	close(w.work)
	close(w.order)
	w.wg.Wait()
	<-w.done
	return w.out.err
}

// compress fills in j's size field and output.
func (w *Writer) compress(j *job) {
	j.out = j.out[:0]
	if j.file != nil && bytes.Equal(j.in, w.zeros[:len(j.in)]) {
		j.hole, j.size = true, 0
		return
	}
	j.hole = false
	out := w.enc.EncodeAll(j.in, j.out)
	if len(out) >= len(j.in) {
		// Stored as it is: compression did not help.
		j.out, j.size = out[:0], uint32(len(j.in))|blockUncompressed
		return
	}
	j.out, j.size = out, uint32(len(out))
}

// writeLoop appends the blocks to the file in queue order. After an error
// it keeps recycling jobs so that Add never blocks; the error surfaces
// through failed and Close.
func (w *Writer) writeLoop() {
	defer close(w.done)
	o := w.out
	for j := range w.order {
		<-j.ready
		if o.err == nil {
			if j.file != nil && j.idx == 0 {
				j.file.start = o.off
			}
			data := j.out
			if j.size&blockUncompressed != 0 {
				data = j.in
			}
			pos := o.off
			if err := o.write(data); err != nil {
				o.fail(err)
			}
			if j.file != nil {
				j.file.blocks[j.idx] = j.size
				if j.hole {
					j.file.sparse += int64(len(j.in))
				}
			} else {
				j.frag.start, j.frag.size = pos, j.size
			}
		}
		j.file, j.frag, j.in = nil, nil, j.in[:0]
		w.free <- j
	}
}

// addData queues size bytes of r: full blocks to the pipeline, the tail to
// a fragment block.
func (w *Writer) addData(size int64, r io.Reader) (*fileData, error) {
	fd := &fileData{size: size, frag: noFragment}
	full := size / int64(w.bs)
	if full > 0 {
		fd.blocks = make([]uint32, full)
	}
	for i := range full {
		if err := w.out.failed(); err != nil {
			return nil, err
		}
		j := <-w.free
		j.in = j.in[:w.bs]
		if _, err := io.ReadFull(r, j.in); err != nil {
			j.in = j.in[:0]
			w.free <- j
			return nil, fmt.Errorf("read block %d: %w", i, noEOF(err))
		}
		j.file, j.idx = fd, int(i)
		w.order <- j
		w.work <- j
	}
	tail := int(size % int64(w.bs))
	if tail == 0 {
		return fd, nil
	}
	// Tails are read aside first: one equal to an earlier tail (the same
	// small file installed twice, a common license text) is stored once,
	// as mksquashfs's duplicate detection would.
	buf := w.scratch[:tail]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read tail: %w", noEOF(err))
	}
	sum := sha256.Sum256(buf)
	if loc, ok := w.tails[sum]; ok {
		fd.frag, fd.fragOff = loc.frag, loc.off
		return fd, nil
	}
	if w.cur != nil && len(w.cur.in)+tail > w.bs {
		w.flushFragment()
	}
	if w.cur == nil {
		w.cur = <-w.free
		w.frags = append(w.frags, &fragment{})
	}
	fd.frag, fd.fragOff = uint32(len(w.frags)-1), uint32(len(w.cur.in))
	w.cur.in = append(w.cur.in, buf...)
	w.tails[sum] = tailLoc{fd.frag, fd.fragOff}
	return fd, nil
}

// tailLoc is where a tail went: fragment block and offset.
type tailLoc struct{ frag, off uint32 }

// flushFragment queues the fragment block being filled.
func (w *Writer) flushFragment() {
	j := w.cur
	w.cur = nil
	j.frag = w.frags[len(w.frags)-1]
	w.order <- j
	w.work <- j
}

// noEOF reports a short content as what it is.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
