package display

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestDisplay(t *testing.T) *Display {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	d := New(f)
	t.Cleanup(func() {
		d.Close()
		f.Close()
	})
	return d
}

func TestTransferred(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{Transferred(12_000_000, 60_000_000), "11.4 MiB of 57.2 MiB (20%)"},
		{Transferred(5_500_000, -1), "5.2 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// A download shows its bytes and total on the image's line; a final
// state ends the line and clears what the steps printed.
func TestImageLine(t *testing.T) {
	d := newTestDisplay(t)
	d.Downloading("app", 12_000_000, 60_000_000)
	render := func() string {
		d.mu.Lock()
		defer d.mu.Unlock()
		r := d.byName["app"]
		return r.render(3, r.started)
	}
	if line := render(); !strings.Contains(line, "downloading") || !strings.Contains(line, "11.4 MiB of 57.2 MiB (20%)") {
		t.Errorf("line while downloading: %q", line)
	}
	d.State("app", "building")
	d.Line("app", "  step output  ")
	d.Pulled("app").Add(2048)
	if line := render(); !strings.Contains(line, "building") || !strings.Contains(line, "pulled 2.0 KiB  step output") {
		t.Errorf("line while building: %q", line)
	}
	d.State("app", "built")
	if line := render(); !strings.HasPrefix(line, "app  built") || strings.Contains(line, "step output") {
		t.Errorf("line once built: %q", line)
	}
}

// A LineWriter shows the last complete line its writes held.
func TestLineWriter(t *testing.T) {
	d := newTestDisplay(t)
	w := d.LineWriter("app")
	io.WriteString(w, "first\nsecond\nthi")
	d.mu.Lock()
	got := d.byName["app"].line
	d.mu.Unlock()
	if got != "second" {
		t.Errorf("line = %q, want %q", got, "second")
	}
	if w := (*Display)(nil).LineWriter("app"); w != io.Discard {
		t.Errorf("nil display's LineWriter = %v", w)
	}
}

// Everything written scrolls above the live lines, a last partial line
// once the display closes.
func TestWriteKeepsTheLog(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := New(f)
	d.Images("app")
	io.WriteString(d, "one\ntwo")
	d.Close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if i, j := strings.Index(out, "one\n"), strings.Index(out, "two\n"); i < 0 || j < i {
		t.Errorf("log lines missing or out of order:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "app  waiting" {
		t.Errorf("last line %q of:\n%q", last, out)
	}
}
