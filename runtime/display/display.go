// Package display is strata's live view of a build or a publish on a
// terminal (one redrawn line per image, the log scrolling above), and the
// formats of sizes and transfers that every command prints, live or not.
package display

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/bytesize"
)

// IsTerminal reports whether f is a terminal, where a live display can
// redraw its lines; anywhere else (a file, a pipe, CI logs) strata prints
// plain lines.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Display is a live, compact view of a build or a publish on a terminal:
// one line per image with its state, elapsed time, the last line its steps
// printed and the bytes it pulled or pushed, redrawn in place below the
// log. Everything written to it (the build log) scrolls above those lines,
// so nothing the plain output would show is lost. A nil *Display does
// nothing, which is how plain output runs.
type Display struct {
	mu      sync.Mutex
	out     *os.File
	rows    []*displayRow
	byName  map[string]*displayRow
	drawn   int // lines of the live region now on screen
	partial []byte
	stop    chan struct{}
	stopped chan struct{}
	closed  bool
}

type displayRow struct {
	name, state, line string
	started, ended    time.Time
	pulled, pushed    atomic.Int64
	// fetched and size are the bytes done and announced (-1: unknown)
	// of the download shown while state is "downloading".
	fetched, size int64
}

// Display states that end an image's line.
var finalStates = map[string]bool{"built": true, "cached": true, "failed": true, "skipped": true, "pushed": true, "up to date": true}

// New starts a display on the terminal f; Close stops it.
func New(f *os.File) *Display {
	d := &Display{out: f, byName: map[string]*displayRow{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go d.tick()
	return d
}

// tick redraws a few times a second so elapsed times move even while a
// step prints nothing.
func (d *Display) tick() {
	defer close(d.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.mu.Lock()
			d.redraw(nil)
			d.mu.Unlock()
		}
	}
}

// Images adds a line, in state "waiting", for each name not shown yet.
func (d *Display) Images(names ...string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range names {
		d.row(n)
	}
}

// row returns the line of name, adding it when missing; d.mu is held.
func (d *Display) row(name string) *displayRow {
	r := d.byName[name]
	if r == nil {
		r = &displayRow{name: name, state: "waiting"}
		d.byName[name] = r
		d.rows = append(d.rows, r)
	}
	return r
}

// State sets what image name is doing: pulling, building, pushing, or a
// final state (built, cached, failed, skipped, pushed).
func (d *Display) State(name, state string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.row(name)
	now := time.Now()
	if r.started.IsZero() && state != "waiting" {
		r.started = now
	}
	if finalStates[state] {
		r.ended = now
		r.line = ""
	}
	r.state = state
	d.redraw(nil)
}

// Downloading shows image name downloading: done bytes of total (-1 when
// the server did not say). It only records the numbers: the next redraw
// (a few times a second) shows them, however often a download reports.
func (d *Display) Downloading(name string, done, total int64) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.row(name)
	if r.started.IsZero() {
		r.started = time.Now()
	}
	r.state, r.fetched, r.size = "downloading", done, total
}

// Line shows line as what image name is doing now (its steps' output).
func (d *Display) Line(name, line string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.row(name).line = strings.TrimSpace(line)
}

// Pulled is the counter of bytes image name downloaded; nil on a nil
// display.
func (d *Display) Pulled(name string) *atomic.Int64 {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return &d.row(name).pulled
}

// Pushed is the counter of bytes image name uploaded; nil on a nil
// display.
func (d *Display) Pushed(name string) *atomic.Int64 {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return &d.row(name).pushed
}

// Write prints whole lines of p above the live region; a trailing
// partial line waits for its end.
func (d *Display) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partial = append(d.partial, p...)
	i := bytes.LastIndexByte(d.partial, '\n')
	if i < 0 {
		return len(p), nil
	}
	lines := d.partial[:i+1]
	d.partial = append([]byte(nil), d.partial[i+1:]...)
	if d.closed {
		_, err := d.out.Write(lines)
		return len(p), err
	}
	d.redraw(lines)
	return len(p), nil
}

// Close draws the final state of every line and stops redrawing; later
// writes go straight to the terminal.
func (d *Display) Close() error {
	if d == nil {
		return nil
	}
	close(d.stop)
	<-d.stopped
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.partial) > 0 {
		d.partial = append(d.partial, '\n')
	}
	d.redraw(d.partial)
	d.partial = nil
	d.closed = true
	return nil
}

// redraw moves the cursor back over the live region, prints log (lines
// that scroll away), then the region again; d.mu is held. Lines are cut
// to the terminal's width: a wrapped line would throw the cursor
// arithmetic off.
func (d *Display) redraw(log []byte) {
	width, height := 100, 40
	if ws, err := unix.IoctlGetWinsize(int(d.out.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		width, height = int(ws.Col), int(ws.Row)
	}
	var buf bytes.Buffer
	if d.drawn > 0 {
		fmt.Fprintf(&buf, "\x1b[%dF\x1b[J", d.drawn)
	}
	buf.Write(log)
	rows := d.visible(max(height-2, 1))
	nameWidth := 0
	for _, r := range rows {
		nameWidth = max(nameWidth, len(r.name))
	}
	now := time.Now()
	for _, r := range rows {
		buf.WriteString(cut(r.render(nameWidth, now), width-1))
		buf.WriteByte('\n')
	}
	d.drawn = len(rows)
	io.Copy(d.out, &buf)
}

// visible picks the lines that fit: unfinished images first, so what is
// running never scrolls off a small terminal.
func (d *Display) visible(limit int) []*displayRow {
	if len(d.rows) <= limit {
		return d.rows
	}
	var active, finished []*displayRow
	for _, r := range d.rows {
		if r.ended.IsZero() {
			active = append(active, r)
		} else {
			finished = append(finished, r)
		}
	}
	rows := append(active, finished...)
	return rows[:limit]
}

func (r *displayRow) render(nameWidth int, now time.Time) string {
	elapsed := ""
	switch {
	case !r.ended.IsZero():
		elapsed = r.ended.Sub(r.started).Round(100 * time.Millisecond).String()
	case !r.started.IsZero():
		elapsed = now.Sub(r.started).Round(100 * time.Millisecond).String()
	}
	s := fmt.Sprintf("%-*s  %-10s %7s", nameWidth, r.name, r.state, elapsed)
	if r.state == "downloading" {
		s += "  " + Transferred(r.fetched, r.size)
	}
	if n := r.pulled.Load(); n > 0 {
		s += "  pulled " + bytesize.Format(n)
	}
	if n := r.pushed.Load(); n > 0 {
		s += "  pushed " + bytesize.Format(n)
	}
	if r.line != "" {
		s += "  " + r.line
	}
	return s
}

// cut shortens s to at most n characters, ending in "…" when cut.
func cut(s string, n int) string {
	if n <= 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

// Transferred formats the progress of a transfer: "12.3 MiB of 60.0 MiB
// (20%)", or "12.3 MiB" when the total is unknown (negative).
func Transferred(done, total int64) string {
	if total <= 0 {
		return bytesize.Format(done)
	}
	return fmt.Sprintf("%s of %s (%d%%)", bytesize.Format(done), bytesize.Format(total), done*100/total)
}

// LineWriter returns a writer whose last complete line becomes the line of
// image name (see Line), so that the image's line shows what its step is
// doing. On a nil display it discards what it is given.
func (d *Display) LineWriter(name string) io.Writer {
	if d == nil {
		return io.Discard
	}
	return &lineTracker{d: d, name: name}
}

// lineTracker passes the last complete line written to it to the display.
type lineTracker struct {
	d    *Display
	name string
	buf  []byte
}

func (t *lineTracker) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if i := bytes.LastIndexByte(t.buf, '\n'); i >= 0 {
		line := t.buf[:i]
		if j := bytes.LastIndexByte(line, '\n'); j >= 0 {
			line = line[j+1:]
		}
		t.d.Line(t.name, string(line))
		t.buf = append(t.buf[:0], t.buf[i+1:]...)
	}
	if len(t.buf) > 4096 {
		t.buf = t.buf[:0] // a line without end is not worth keeping
	}
	return len(p), nil
}
