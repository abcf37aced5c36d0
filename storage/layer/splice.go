package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// pipeOut writes a tar stream into the write end of a blocking pipe, with
// file contents spliced from their files: the kernel moves page references
// instead of copying the data twice through this process.
type pipeOut struct {
	fd  int
	buf bytes.Buffer // tar headers and padding not yet written
}

func (p *pipeOut) writeAll(b []byte) error { return writeAll(p.fd, b) }

func (p *pipeOut) flush() error {
	err := p.writeAll(p.buf.Bytes())
	p.buf.Reset()
	return err
}

var zeroBlock [2 * 512]byte

// stream writes the entries to the pipe. The header of each entry is
// formatted by a throwaway tar.Writer (archive/tar insists on writing the
// content itself); the content and its padding are added here.
func (p *pipeOut) stream(ctx context.Context, ordered <-chan *entry) (n int, err error) {
	for e := range ordered {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := tar.NewWriter(&p.buf).WriteHeader(e.hdr); err != nil {
			return n, fmt.Errorf("tar header for %s: %w", e.hdr.Name, err)
		}
		n++
		if e.pf != nil {
			if err := p.flush(); err != nil {
				return n, err
			}
			if err := p.splice(e.pf); err != nil {
				return n, err
			}
			p.buf.Write(zeroBlock[:(512-e.pf.size%512)%512])
		}
		if p.buf.Len() >= 256<<10 {
			if err := p.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// finish ends the archive, once the walk has ended without an error.
func (p *pipeOut) finish() error {
	p.buf.Write(zeroBlock[:])
	return p.flush()
}

func (p *pipeOut) splice(pf *prefetch) error {
	fd, err := openNoatime(pf.path)
	if err != nil {
		return fmt.Errorf("open %s: %w", pf.path, err)
	}
	defer unix.Close(fd)
	for rest := pf.size; rest > 0; {
		k, err := unix.Splice(fd, nil, p.fd, nil, int(min(rest, 1<<30)), unix.SPLICE_F_MORE)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("splice %s: %w", pf.path, err)
		}
		if k == 0 {
			return fmt.Errorf("read %s: file shrank while being committed", pf.path)
		}
		rest -= k
	}
	return nil
}
