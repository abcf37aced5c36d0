package strata

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// captureStd runs f with os.Stdout and os.Stderr sent to files and
// returns what each received.
func captureStd(t *testing.T, f func()) (stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	open := func(name string) *os.File {
		file, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return file
	}
	outF, errF := open("stdout"), open("stderr")
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	defer func() { os.Stdout, os.Stderr = oldOut, oldErr }()
	f()
	os.Stdout, os.Stderr = oldOut, oldErr
	read := func(file *os.File) string {
		file.Close()
		b, err := os.ReadFile(file.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return read(outF), read(errF)
}

// singleDash matches a long flag written with one dash, as Go's flag
// package prints them ("-store").
var singleDash = regexp.MustCompile(`(^|[\s(\['"])-[a-z][a-z-]+`)

func TestHelpSpellsFlagsWithTwoDashesSorted(t *testing.T) {
	for _, c := range commands() {
		out, _ := captureStd(t, func() {
			if code := Command(context.Background(), []string{c.name, "-h"}, nil); code != 0 {
				t.Errorf("strata %s -h exited %d", c.name, code)
			}
		})
		if !strings.HasPrefix(out, "Usage: strata "+c.name+" ") {
			t.Errorf("strata %s -h printed on stdout:\n%s", c.name, out)
		}
		if m := singleDash.FindString(out); m != "" {
			t.Errorf("strata %s -h shows a flag with one dash (%q):\n%s", c.name, m, out)
		}
		var names []string
		for _, line := range strings.Split(out, "\n") {
			if name, ok := strings.CutPrefix(line, "  --"); ok {
				name, _, _ = strings.Cut(name, " ")
				names = append(names, name)
			}
		}
		if !slices.IsSorted(names) {
			t.Errorf("strata %s -h does not sort its flags: %v", c.name, names)
		}
		want := 0
		commandFlags(c).VisitAll(func(f *flag.Flag) { want++ })
		if len(names) != want {
			t.Errorf("strata %s -h lists %d flags, the command has %d:\n%s", c.name, len(names), want, out)
		}
	}
	out, _ := captureStd(t, func() { Command(context.Background(), []string{"build", "--help"}, nil) })
	for _, want := range []string{"  --store folder\n", "(default .strata)", "  --no-cache\n", "  --jobs int\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("strata build --help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "--no-cache (default") || strings.Contains(out, "(default false)") || strings.Contains(out, "(default 0)") {
		t.Errorf("strata build --help shows zero defaults:\n%s", out)
	}
}

func TestUsageSpellsFlagsWithTwoDashes(t *testing.T) {
	var b bytes.Buffer
	usage(&b)
	if m := singleDash.FindString(b.String()); m != "" {
		t.Errorf("strata help shows a flag with one dash (%q):\n%s", m, b.String())
	}
	for _, c := range commands() {
		if !strings.Contains(b.String(), "  "+c.name) {
			t.Errorf("strata help does not list %s", c.name)
		}
	}
}

// A bad command line is reported in one line that says where help is,
// with exit status 2, and no usage dump.
func TestBadCommandLineIsOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--nope"}, "strata build: unknown flag --nope; see 'strata build -h'\n"},
		{[]string{"build", "-nope"}, "strata build: unknown flag --nope; see 'strata build -h'\n"},
		{[]string{"build", "--jobs", "many"}, "strata build: invalid value \"many\" for --jobs: parse error; see 'strata build -h'\n"},
		{[]string{"build", "--no-cache=maybe"}, "strata build: invalid boolean value \"maybe\" for --no-cache: parse error; see 'strata build -h'\n"},
		{[]string{"publish", "hello", "--to"}, "strata publish: flag --to needs a value; see 'strata publish -h'\n"},
		{[]string{"run", "--layuot", "x", "hello"}, "strata run: unknown flag --layuot; see 'strata run -h'\n"},
		{[]string{"bulid"}, "strata: unknown command \"bulid\"; see 'strata help'\n"},
	} {
		var code int
		out, errOut := captureStd(t, func() { code = Command(context.Background(), tc.args, nil) })
		if code != 2 || errOut != tc.want || out != "" {
			t.Errorf("strata %v: exit %d, stderr:\n%s\nstdout:\n%s\nwant exit 2 and %q", tc.args, code, errOut, out, tc.want)
		}
	}
}

func TestSingleDashFlagsStillParse(t *testing.T) {
	opts, names, err := ParseBuildFlags([]string{"-jobs", "3", "hello", "-no-cache", "--store=s"})
	if err != nil || opts.Jobs != 3 || !opts.NoCache || opts.Store != "s" || !slices.Equal(names, []string{"hello"}) {
		t.Errorf("got %+v %v %v", opts, names, err)
	}
}
