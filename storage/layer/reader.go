package layer

import (
	"context"
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
