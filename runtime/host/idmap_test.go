package host

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-build/strata/runtime/sandbox"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIDMapFromSubordinateRange(t *testing.T) {
	dir := t.TempDir()
	u := &user.User{Username: "alice", Uid: "1000"}
	p := writeFile(t, dir, "subuid", "# comment\nbob:100000:65536\nalice:165536:65536\n")
	got, err := idMap(p, u, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []sandbox.IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 165537, Size: 65535}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("map (-want +got):\n%s", diff)
	}
	// A range may name the user by uid.
	p = writeFile(t, dir, "byuid", "1000:200000:70000\n")
	if got, err := idMap(p, u, 1000); err != nil || got[1].HostID != 200001 {
		t.Errorf("by uid: %v, %v", got, err)
	}
}

func TestIDMapExplainsProblems(t *testing.T) {
	dir := t.TempDir()
	u := &user.User{Username: "alice", Uid: "1000"}
	for _, tc := range []struct {
		name, content string
		own           uint32
		want          []string
		noSubIDs      bool
	}{
		{"missing", "bob:100000:65536\n", 1000, []string{"no range of 65536 ids for alice", "strata unpriv-setup --user alice"}, true},
		{"too small", "alice:100000:1000\n", 1000, []string{"no range of 65536"}, true},
		{"own id inside", "alice:0:70000\n", 1000, []string{"contains the user's own id 1000", "strata unpriv-setup does"}, false},
		{"malformed", "alice:x:65536\n", 1000, []string{":1: bad numbers"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_"), tc.content)
			_, err := idMap(p, u, tc.own)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errors.Is(err, ErrNoSubIDs) != tc.noSubIDs {
				t.Errorf("errors.Is(ErrNoSubIDs) = %v", !tc.noSubIDs)
			}
		})
	}
}
