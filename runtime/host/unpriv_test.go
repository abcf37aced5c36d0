package host

import (
	"bytes"
	"os"
	"os/user"
	"strings"
	"testing"
)

func TestAddRangeNeverOverlapsAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	// Taken: 100000-165535 and 231072-296607; the user's own id is in the
	// second free slot (165536-231071), so the third free slot is used.
	p := writeFile(t, dir, "subuid", "bob:100000:65536\ncarol:231072:65536\n")
	u := &user.User{Username: "alice", Uid: "170000"}
	var log bytes.Buffer
	if err := addRange(p, u, 170000, &log); err != nil {
		t.Fatal(err)
	}
	if err := addRange(p, u, 170000, &log); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "bob:100000:65536\ncarol:231072:65536\nalice:296608:65536\n"
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
	if !strings.Contains(log.String(), "already has 296608-362143") {
		t.Errorf("second run said:\n%s", log.String())
	}
	// A range that holds the user's own id is refused, not silently kept.
	p = writeFile(t, dir, "bad", "alice:100000:65536\n")
	if err := addRange(p, &user.User{Username: "alice"}, 100005, &log); err == nil || !strings.Contains(err.Error(), "contains the user's own id 100005") {
		t.Errorf("err = %v", err)
	}
}
