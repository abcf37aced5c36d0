package runtime

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/runtime/display"
	"github.com/strata-build/strata/storage/fetch"
)

// A download under way shows its bytes and total on the image's live
// line; when it finishes the line goes back to waiting for the steps.
func TestDownloadProgressOnDisplay(t *testing.T) {
	tty := filepath.Join(t.TempDir(), "tty")
	f, err := os.Create(tty)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := display.New(f)
	defer d.Close()
	b := &builder{opts: Options{Progress: d}, con: &console{out: d}}
	// lastLine is the image's line as last drawn: a log line written to
	// the display redraws its lines below it.
	lastLine := func() string {
		t.Helper()
		fmt.Fprintln(d, "log")
		out, err := os.ReadFile(tty)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		last := lines[len(lines)-1]
		// A redraw of its own (a few a second) starts with the escapes
		// that move back over the lines.
		if i := strings.LastIndex(last, "\x1b[J"); i >= 0 {
			last = last[i+len("\x1b[J"):]
		}
		return last
	}
	report := b.downloadOptions("app", "https://example.com/files/rootfs.tar.zst").Progress
	report(fetch.Progress{Total: 60_000_000})
	report(fetch.Progress{Done: 12_000_000, Total: 60_000_000})
	if line := lastLine(); !strings.Contains(line, "downloading") || !strings.Contains(line, "11.4 MiB of 57.2 MiB (20%)") {
		t.Errorf("line while downloading: %q", line)
	}
	report(fetch.Progress{Done: 60_000_000, Total: 60_000_000, Finished: true})
	if line := lastLine(); !strings.HasPrefix(line, "app  waiting") {
		t.Errorf("line after the download: %q", line)
	}
}

// Plain output is throttled: a burst of reports prints nothing before
// plainProgressEvery has passed, and a download that printed nothing
// does not announce its end either.
func TestDownloadProgressPlainThrottled(t *testing.T) {
	var out bytes.Buffer
	b := &builder{con: &console{out: &out}}
	report := b.downloadOptions("app", "https://example.com/tool").Progress
	report(fetch.Progress{Total: -1})
	for i := range 1000 {
		report(fetch.Progress{Done: int64(i) * 4096, Total: -1})
	}
	report(fetch.Progress{Done: 4096000, Total: -1, Finished: true})
	if out.Len() != 0 {
		t.Errorf("a quick download printed:\n%s", out.String())
	}
}

// Past the interval, plain output says how far a download got, and then
// that it ended.
func TestDownloadProgressPlainLines(t *testing.T) {
	defer func(d time.Duration) { plainProgressEvery = d }(plainProgressEvery)
	plainProgressEvery = 0
	var out bytes.Buffer
	b := &builder{con: &console{out: &out}}
	report := b.downloadOptions("app", "https://example.com/files/rootfs.tar.zst?x=1").Progress
	report(fetch.Progress{Done: 30_000_000, Total: 60_000_000})
	report(fetch.Progress{Done: 60_000_000, Total: 60_000_000, Finished: true})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "app: downloading rootfs.tar.zst: 28.6 MiB of 57.2 MiB (50%)" || !strings.HasPrefix(lines[1], "app: downloaded rootfs.tar.zst (57.2 MiB in ") {
		t.Errorf("plain lines:\n%s", out.String())
	}
}
