package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/strata-build/strata/dsl"
)

// LogPath is where the store at storeRoot keeps the log of the last build
// of image name: everything its steps printed, so that a failure can be
// read after the fact, whatever the terminal showed.
func LogPath(storeRoot, name string) string {
	return filepath.Join(storeRoot, "logs", name+".log")
}

// stepOutput returns where n's steps write: w (the console), the image's
// log in the store, and the live display's line for n. It replaces the log
// of the image's previous build.
func (b *builder) stepOutput(n *dsl.Node, w io.Writer) io.Writer {
	b.opts.Progress.State(n.Name, "building")
	writers := []io.Writer{w}
	if f := b.hooks.openLog(b, n.Name); f != nil {
		writers = append(writers, f)
	}
	if b.opts.Progress != nil {
		writers = append(writers, b.opts.Progress.LineWriter(n.Name))
	}
	return &lockedWriter{w: io.MultiWriter(writers...)}
}

// openLog creates logs/NAME.log with a header line; a store that cannot
// keep logs gets one warning and builds on.
func (h *hooks) openLog(b *builder, name string) *os.File {
	path := LogPath(b.opts.Store.Root, name)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	var f *os.File
	if err == nil {
		f, err = os.Create(path)
	}
	if err != nil {
		h.logWarn.Do(func() { b.con.printf("warning: build logs are not kept: %v\n", err) })
		return nil
	}
	fmt.Fprintf(f, "strata: building %s at %s\n", name, time.Now().Format(time.RFC3339))
	h.mu.Lock()
	h.logs[name] = f
	h.mu.Unlock()
	return f
}

// closeLog ends the log of a build with how it ended.
func (h *hooks) closeLog(res *Result) {
	h.mu.Lock()
	f := h.logs[res.Name]
	delete(h.logs, res.Name)
	h.mu.Unlock()
	if f == nil {
		return
	}
	if res.Err != nil {
		fmt.Fprintf(f, "strata: %s %s after %s: %v\n", res.Name, res.Status, res.Duration.Round(time.Millisecond), res.Err)
	} else {
		fmt.Fprintf(f, "strata: %s %s in %s\n", res.Name, res.Status, res.Duration.Round(time.Millisecond))
	}
	f.Close()
}

// lockedWriter serialises writes from a step's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
