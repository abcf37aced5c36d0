package strata_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/strata-build/strata"
)

// paramName is the rule parameter names follow, written apart from
// the reader's loop so that the two can disagree.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzReadParamsFile reads the fuzzed bytes as a --params file. A file
// that is accepted gives names that follow the rule and values that are
// one line each, and it round-trips: writing what was read back as
// KEY=VALUE lines and reading that gives the same parameters. CRLF line
// ends are written because the reader drops one "\r" before "\n", and a
// value may itself end in "\r".
func FuzzReadParamsFile(f *testing.F) {
	for _, s := range []string{
		"# comment\n\nA=1\n  B = spaced=value \nURL=http://x/?a=b\n",
		"A=1\r\nB=2\r\n",
		"A=\nB==\n=x\n",
		"9A=1\n", "A B=1\n", "A\n", "\tK\t=\tv\t\n",
		"K=v\r\r\n", "K=\xff\x00\n", "\xc2\xa0K=v\n", "K=1\nK=2\n",
		"#K=1\n  # K=2\n", "K=" + strings.Repeat("v", 70000) + "\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(dir, "params")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := strata.ReadParamsFile(file)
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		var again strings.Builder
		for _, k := range slices.Sorted(maps.Keys(got)) {
			v := got[k]
			if !paramName.MatchString(k) {
				t.Fatalf("accepted parameter name %q", k)
			}
			if strings.Contains(v, "\n") {
				t.Fatalf("parameter %s has a value of more than one line: %q", k, v)
			}
			again.WriteString(k + "=" + v + "\r\n")
		}
		if err := os.WriteFile(file, []byte(again.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		back, err := strata.ReadParamsFile(file)
		if err != nil {
			t.Fatalf("%q read from %q does not read back: %v", again.String(), data, err)
		}
		if !maps.Equal(got, back) {
			t.Fatalf("%q read as %q, written back as %q, read again as %q", data, got, again.String(), back)
		}
	})
}
