package ignore

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestExcluded(t *testing.T) {
	tests := []struct {
		patterns []string
		name     string
		dir      bool
		want     bool
	}{
		{[]string{"*.log"}, "a.log", false, true},
		{[]string{"*.log"}, "sub/deep/a.log", false, true},
		{[]string{"*.log"}, "a.log.txt", false, false},
		{[]string{"*.log"}, "alog", false, false},
		{[]string{"/*.log"}, "a.log", false, true},
		{[]string{"/*.log"}, "sub/a.log", false, false},
		{[]string{"node_modules/"}, "node_modules", true, true},
		{[]string{"node_modules/"}, "web/node_modules", true, true},
		{[]string{"node_modules/"}, "node_modules", false, false}, // a file of that name
		{[]string{"node_modules"}, "node_modules", false, true},
		{[]string{"a?c"}, "abc", false, true},
		{[]string{"a?c"}, "a/c", false, false},
		{[]string{"[a-c].txt"}, "b.txt", false, true},
		{[]string{"[a-c].txt"}, "d.txt", false, false},
		{[]string{`\*.txt`}, "*.txt", false, true},
		{[]string{`\*.txt`}, "a.txt", false, false},
		{[]string{"/docs/**/*.md"}, "docs/a.md", false, true},
		{[]string{"/docs/**/*.md"}, "docs/x/y/a.md", false, true},
		{[]string{"/docs/**/*.md"}, "src/docs/a.md", false, false},
		{[]string{"docs/*.md"}, "src/docs/a.md", false, true}, // unanchored: any depth
		{[]string{"a/**/b"}, "a/b", false, true},
		{[]string{"a/**/b"}, "a/x/y/b", false, true},
		{[]string{"/build/**"}, "build", true, false}, // what is inside, not the folder
		{[]string{"/build/**"}, "build/x", false, true},
		{[]string{"/build/**"}, "build/x/y", false, true},
		{[]string{"**"}, "x", false, true},
		{[]string{"**"}, "x/y", true, true},
		{[]string{"*.log", "!keep.log"}, "keep.log", false, false},
		{[]string{"*.log", "!keep.log"}, "sub/keep.log", false, false},
		{[]string{"*.log", "!keep.log"}, "other.log", false, true},
		{[]string{"*.log", "!keep.log", "*.log"}, "keep.log", false, true}, // the last match decides
		{[]string{"!keep.log"}, "keep.log", false, false},
		{[]string{"/build/**", "!/build/keep"}, "build/keep", false, false},
		{[]string{"tmp/", "!tmp/"}, "tmp", true, false},
		{[]string{`\!x`}, "!x", false, true},
		{[]string{"a//b"}, "a/b", false, true},
		{nil, "anything", false, false},
	}
	for _, tt := range tests {
		m, err := Compile(tt.patterns)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.patterns, err)
		}
		if got := m.Excluded(tt.name, tt.dir); got != tt.want {
			t.Errorf("Compile(%q).Excluded(%q, dir=%v) = %v, want %v", tt.patterns, tt.name, tt.dir, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, p := range []string{"", "!", "/", "!/", "[a-", `x\`, "../x", "a/./b", "//"} {
		_, err := Compile([]string{"ok", p})
		if err == nil {
			t.Errorf("Compile(%q): no error", p)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", p)) {
			t.Errorf("Compile(%q): error %q does not name the pattern", p, err)
		}
	}
}

func TestNilMatcher(t *testing.T) {
	var m *Matcher
	if m.Excluded("x", false) {
		t.Error("a nil Matcher excluded x")
	}
}

func TestWalk(t *testing.T) {
	fsys := fstest.MapFS{
		"a.txt":                     {Data: []byte("a")},
		"a.log":                     {Data: []byte("log")},
		"keep.log":                  {Data: []byte("log")},
		".git/config":               {Data: []byte("x")},
		"sub/.git":                  {Data: []byte("gitdir: ../.git/worktrees/sub")},
		"sub/b.txt":                 {Data: []byte("b")},
		"node_modules/x/index.js":   {Data: []byte("x")},
		".strata/" + StoreTag:       {Data: []byte(StoreTagText)},
		".strata/layers/x":          {Data: []byte("x")},
		"oci/oci-layout":            {Data: []byte("{}")},
		"oci/index.json":            {Data: []byte("{}")},
		"oci/blobs/sha256/0":        {Data: []byte("x")},
		"target/" + StoreTag:        {Data: []byte("Signature: 8a477f597d28d172789f06886806bc55\n# rust\n")},
		"target/debug/app":          {Data: []byte("x")},
		"half/oci-layout":           {Data: []byte("{}")},
		"half/readme":               {Data: []byte("x")},
		"deep/.strata/" + StoreTag:  {Data: []byte(StoreTagText)},
		"deep/.strata/layers/x":     {Data: []byte("x")},
		"deep/notes/.git/HEAD":      {Data: []byte("x")},
		"deep/notes/readme":         {Data: []byte("x")},
		"deep/layout/oci-layout":    {Data: []byte("{}")},
		"deep/layout/index.json":    {Data: []byte("{}")},
		"deep/layout/blobs/sha256/": {Mode: fs.ModeDir},
	}
	m, err := Compile([]string{"*.log", "!keep.log", "node_modules/"})
	if err != nil {
		t.Fatal(err)
	}
	got := walked(t, fsys, m)
	want := []string{
		".", "a.txt", "deep", "deep/notes", "deep/notes/readme", "half", "half/oci-layout", "half/readme",
		"keep.log", "sub", "sub/b.txt", "target", "target/" + StoreTag, "target/debug", "target/debug/app",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("walked (-want +got):\n%s", d)
	}

	var left []string
	err = WalkLeftOut(fsys, m, func(name string, d fs.DirEntry) error {
		left = append(left, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLeft := []string{
		".git", ".strata", "a.log", "deep/.strata", "deep/layout", "deep/notes/.git", "node_modules", "oci", "sub/.git",
	}
	if d := cmp.Diff(wantLeft, left); d != "" {
		t.Errorf("left out (-want +got):\n%s", d)
	}

	// A store or layout imported by its own path is imported.
	sub, _ := fs.Sub(fsys, "oci")
	if got := walked(t, sub, nil); len(got) != 6 {
		t.Errorf("walk of a layout as the root: %q", got)
	}
}

func walked(t *testing.T, fsys fs.FS, m *Matcher) []string {
	t.Helper()
	var got []string
	err := Walk(fsys, m, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		got = append(got, name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// FuzzExcluded checks that no pattern and name make Compile or Excluded
// panic, and that a pattern made of a name's literal segments, anchored,
// matches that name.
func FuzzExcluded(f *testing.F) {
	for _, s := range []string{"*.log", "/a/**/b", "!x/", "[a-", `\`, "**/**/x", "a//b"} {
		f.Add(s, "a/b/c.log", false)
	}
	f.Fuzz(func(t *testing.T, pat, name string, dir bool) {
		if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "//") || strings.HasSuffix(name, "/") {
			return
		}
		m, err := Compile([]string{pat})
		if err == nil {
			m.Excluded(name, dir)
		}
		for seg := range strings.SplitSeq(name, "/") {
			if seg == "." || seg == ".." || strings.ContainsAny(seg, `*?[\`) || strings.HasPrefix(name, "!") {
				return
			}
		}
		lit, err := Compile([]string{"/" + name})
		if err != nil {
			t.Fatalf("Compile(/%s): %v", name, err)
		}
		if !lit.Excluded(name, dir) {
			t.Errorf("/%s does not match %s", name, path.Clean(name))
		}
	})
}
