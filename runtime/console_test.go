package runtime

import (
	"bytes"
	"strings"
	"testing"
)

// While a shell on failure is open, other images' lines wait; they come
// out in order when it closes, and a flood beyond maxHeld is counted,
// not kept.
func TestConsoleHoldsLinesWhileAShellIsOpen(t *testing.T) {
	var out bytes.Buffer
	c := &console{out: &out}
	c.printf("before\n")
	c.hold()
	c.printf("base: built\n")
	w := newPrefixWriter(c, "other", 5)
	w.Write([]byte("step line\n"))
	if got := out.String(); got != "before\n" {
		t.Fatalf("while held, the console wrote %q", got)
	}
	c.release()
	if got, want := out.String(), "before\nbase: built\nother | step line\n"; got != want {
		t.Fatalf("after release: %q, want %q", got, want)
	}

	out.Reset()
	c.hold()
	big := strings.Repeat("x", maxHeld) + "\n"
	c.printf("kept\n")
	c.printf("%s", big)
	c.release()
	if got := out.String(); !strings.HasPrefix(got, "kept\n(") || !strings.Contains(got, "were not shown") {
		t.Errorf("after a flood: %.80q", got)
	}
	c.printf("after\n")
	if !strings.HasSuffix(out.String(), "after\n") {
		t.Error("the console did not write directly again after release")
	}
}
