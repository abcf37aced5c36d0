// Package flight runs one piece of work per key at a time, for work whose
// outcome depends on the caller as well as the key: the images of a build
// that need one layer folder encoded or one base layer unpacked, each
// with its own wishes (layer types, the diff ID its config claims). singleflight shares one call's outcome with
// every caller that arrives while it runs; Group adds whether the caller's
// own work ran, so that one that waited for another's looks again at what
// that left, and runs its own if it still must. Work whose outcome depends
// on the key alone uses singleflight itself, and CancelledElsewhere.
package flight

import (
	"context"
	"errors"

	"golang.org/x/sync/singleflight"
)

// Group is one set of keys. The zero value is ready to use.
type Group[T any] struct{ g singleflight.Group }

// Do runs work for key, unless work for key is already running; then it
// waits for that, returns its outcome and ran false. A caller that gets
// ran false must not take the outcome (or its error, which may name
// another caller's input) as its own: it looks again at what is there
// now and calls Do again if it still needs work done.
func (g *Group[T]) Do(key string, work func() (T, error)) (v T, ran bool, err error) {
	me := new(byte)
	out, err, _ := g.g.Do(key, func() (any, error) {
		v, err := work()
		return result[T]{by: me, v: v}, err
	})
	r, ok := out.(result[T])
	if !ok { // work ended by runtime.Goexit: nobody's outcome
		var zero T
		return zero, false, err
	}
	return r.v, r.by == me, err
}

// CancelledElsewhere reports whether err, an outcome shared with other
// callers, is the cancellation of the caller that ran the work while the
// caller with ctx still wants it done: that caller should call again.
func CancelledElsewhere(ctx context.Context, err error) bool {
	return ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

type result[T any] struct {
	by *byte
	v  T
}
