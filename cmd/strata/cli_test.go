package main_test

import (
	"strings"
	"testing"
)

// TestRunBuildOnlyImage: strata run of a build-only image (never tagged)
// says so and how to get a shell in it; an unknown name says how to
// build it and mentions chroot for build-only images.
func TestRunBuildOnlyImage(t *testing.T) {
	needRoot(t)
	h := newHelloBuild(t, "runbuildonly")
	h.dir = repo(t, "cmd/strata/testdata/publish")
	mustStrata(t, h.dir, append([]string{"build"}, h.flags()...)...)

	out, code := strata(t, h.dir, append([]string{"run"}, h.flags("tool")...)...)
	if code != 1 || !strings.Contains(out, `image "tool" was built but is not tagged`) || !strings.Contains(out, "build-only image") || !strings.Contains(out, "strata chroot tool") {
		t.Errorf("strata run of a build-only image exited %d:\n%s", code, out)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("the message is more than one line:\n%s", out)
	}
	out, code = strata(t, h.dir, append([]string{"run"}, h.flags("nothere")...)...)
	if code != 1 || !strings.Contains(out, "strata build nothere") || !strings.Contains(out, "strata chroot nothere") {
		t.Errorf("strata run of an unknown image exited %d:\n%s", code, out)
	}
	// The chroot it points at works.
	if out := mustStrata(t, h.dir, "chroot", "--store", h.store, "tool", "--", "cat", "/out/file"); !strings.Contains(out, "made by tool") {
		t.Errorf("strata chroot tool printed:\n%s", out)
	}
}

// TestBadFlagIsOneLine runs the binary, through the driver of a
// definitions package and without one: a mistyped flag is one line that
// names it and where help is, with exit status 2.
func TestBadFlagIsOneLine(t *testing.T) {
	h := newHelloBuild(t, "badflag")
	for _, args := range [][]string{{"build", "--no-cahce"}, {"run", "--no-cahce", "hello"}} {
		out, code := strata(t, h.dir, args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		want := "strata " + args[0] + ": unknown flag --no-cahce; see 'strata " + args[0] + " -h'"
		// The first line may say the definitions were compiled.
		if code != 2 || last != want || len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[0], "strata: compiled definitions") {
			t.Errorf("strata %v exited %d:\n%s\nwant %q", args, code, out, want)
		}
	}
	out, code := strata(t, h.dir, "biuld")
	if code != 2 || strings.TrimSpace(out) != `strata: unknown command "biuld"; see 'strata help'` {
		t.Errorf("strata biuld exited %d:\n%s", code, out)
	}
}
