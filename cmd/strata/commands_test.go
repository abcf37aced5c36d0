package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/strata-build/strata"
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
			if code := execute(context.Background(), []string{c.name, "-h"}, nil); code != 0 {
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
		want := 0
		commandFlags(c).VisitAll(func(f *flag.Flag) { want++ })
		if len(names) != want {
			t.Errorf("strata %s -h lists %d flags, the command has %d:\n%s", c.name, len(names), want, out)
		}
	}
	out, _ := captureStd(t, func() { execute(context.Background(), []string{"build", "--help"}, nil) })
	// The store is the module's: from this folder, a path up to its root.
	for _, want := range []string{"  --store folder\n", "(default " + strata.DefaultStore() + ")", "  --no-cache\n", "  --jobs int\n"} {
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
		{[]string{"completion", "tcsh"}, "strata completion: no completion for shell \"tcsh\": use bash, zsh or fish; see 'strata completion -h'\n"},
		{[]string{"bulid"}, "strata: unknown command \"bulid\"; see 'strata help'\n"},
	} {
		var code int
		out, errOut := captureStd(t, func() { code = execute(context.Background(), tc.args, nil) })
		if code != 2 || errOut != tc.want || out != "" {
			t.Errorf("strata %v: exit %d, stderr:\n%s\nstdout:\n%s\nwant exit 2 and %q", tc.args, code, errOut, out, tc.want)
		}
	}
}

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var b bytes.Buffer
	if err := cmdCompletion(&b, []string{shell}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBashCompletionSyntax(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(t.TempDir(), "strata.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
}

// complete sources the bash completion and returns COMPREPLY for the
// command line words, the last one being completed. strata itself is a
// stand-in whose list prints two images.
func complete(t *testing.T, words ...string) []string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "strata.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	prog := `source "$1"
strata() { [ "$1" = list ] && printf 'busybox  A minimal base\nhello    Hello greets.\ntools    Tools (build-only)\n'; }
COMP_WORDS=(` + strings.Join(quoted, " ") + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_strata
printf '%s\n' "${COMPREPLY[@]}"
`
	out, err := exec.Command("bash", "-c", prog, "bash", script).CombinedOutput()
	if err != nil {
		t.Fatalf("completing %v: %v\n%s", words, err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	return got
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"strata", "bu"}, []string{"build"}},
		{[]string{"strata", "build", "--no-"}, []string{"--no-cache", "--no-sbom", "--no-verity", "--no-wait"}},
		{[]string{"strata", "-C", "examples/hello", "build", "--no-"}, []string{"--no-cache", "--no-sbom", "--no-verity", "--no-wait"}},
		{[]string{"strata", "publish", "--bu"}, []string{"--build"}},
		{[]string{"strata", "run", "h"}, []string{"hello"}},
		{[]string{"strata", "build", "--jobs", ""}, nil},
		{[]string{"strata", "run", "hello", "--", "h"}, nil},
		{[]string{"strata", "completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"strata", "check", "--s"}, []string{"--squashfs", "--store"}},
	} {
		got := complete(t, tc.words...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q<TAB>: got %q, want %q", strings.Join(tc.words, " "), got, tc.want)
		}
	}
	// Every flag of every command is offered.
	for _, c := range commands() {
		got := complete(t, "strata", c.name, "--")
		commandFlags(c).VisitAll(func(f *flag.Flag) {
			if !slices.Contains(got, "--"+f.Name) {
				t.Errorf("strata %s --<TAB> does not offer --%s: %q", c.name, f.Name, got)
			}
		})
	}
}

func TestZshAndFishCompletion(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			script := completionScript(t, shell)
			if !strings.Contains(script, "no-cache") {
				t.Errorf("%s completion lacks build's flags:\n%s", shell, script)
			}
			if _, err := exec.LookPath(shell); err != nil {
				t.Skipf("%s is not installed", shell)
			}
			file := filepath.Join(t.TempDir(), "strata."+shell)
			if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(shell, "-n", file).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
			// Complete "strata build --no-" and "strata run h" with a
			// stand-in strata whose list prints two images.
			var prog string
			if shell == "fish" {
				prog = `source $argv[1]
function strata; printf 'hello  Hello\nbusybox  Base\n'; end
complete -C 'strata build --no-'
complete -C 'strata run h'`
			} else {
				// compgen -F is how zsh's bashcompinit calls the function.
				prog = `source $1
strata() { printf 'hello  Hello\nbusybox  Base\n' }
for line in 'strata build --no-' 'strata run h'; do
  words=(${=line}); CURRENT=${#words}
  COMP_WORDS=("${words[@]}"); COMP_CWORD=$((CURRENT - 1))
  compgen -F _strata -- ${words[CURRENT]}
done`
			}
			out, err := exec.Command(shell, "-c", prog, file, file).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", shell, err, out)
			}
			for _, want := range []string{"--no-cache", "--no-wait", "hello"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("%s completion lacks %s:\n%s", shell, want, out)
				}
			}
			if strings.Contains(string(out), "unpriv-setup") {
				t.Errorf("%s completion offers commands after strata build:\n%s", shell, out)
			}
		})
	}
}

func TestCompletionHelpText(t *testing.T) {
	for in, want := range map[string]string{
		"registry credentials `USER:PASSWORD` (default: the docker config)": "registry credentials USER:PASSWORD",
		"layer type: tar+gzip (default), tar+zstd or squashfs":              "layer type",
		"build parameter KEY=VALUE; repeatable, wins over --params":         "build parameter KEY=VALUE",
	} {
		if got := shortText(strings.ReplaceAll(in, "`", "")); got != want {
			t.Errorf("shortText(%q) = %q, want %q", in, got, want)
		}
	}
}
