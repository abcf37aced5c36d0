// Package ignore decides which entries of a folder an import of that folder
// leaves out: those matched by the exclusion patterns of dsl.Exclude, and
// those strata never imports implicitly (.git, strata stores, OCI layouts).
//
// The dsl package hashes a folder for its cache key and the sandbox copies
// it; both walk it with [Walk], so the key covers exactly what is copied.
// The sandbox reads the folder through an os.Root, dsl through the
// evaluation's file system (Options.FS) with symlinks resolved as an
// os.Root resolves them; Walk itself reads only the fs.FS it is given.
//
// The matcher is written here rather than taken from
// github.com/moby/patternmatcher (the .dockerignore matcher of docker and
// BuildKit) because the semantics strata wants differ from it in ways a
// wrapper cannot fix from outside: patterns without a leading "/" match at
// any depth rather than only at the root, a trailing "/" matches folders
// only, and an excluded folder is never entered (so there is no parent
// matching to do). Its per-pattern matching is unexported, so each of
// those would mean rewriting patterns into its syntax and undoing its
// parent matching. Segment-wise matching with path.Match is short, and it
// spares the dsl package, which every user definition imports, one more
// module.
package ignore

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Matcher holds compiled exclusion patterns. The zero value and nil
// exclude nothing.
type Matcher struct {
	patterns []pattern
}

type pattern struct {
	segs    []string // path segments; "**" stands for any number of them
	dirOnly bool     // the pattern ended in "/"
	negate  bool     // the pattern started with "!"
}

// Compile checks and compiles patterns, in the syntax of dsl.Exclude:
//
//   - "*" matches any run of characters but "/", "?" one such character,
//     "[a-z]" a class and "\" escapes, as path.Match;
//   - "**" as a whole segment matches any number of folders (also none);
//     a trailing "/**" matches everything inside a folder, not the folder;
//   - a leading "/" anchors the pattern to the imported folder's root;
//     without it the pattern matches at any depth;
//   - a trailing "/" makes the pattern match folders only;
//   - a leading "!" re-includes what earlier patterns excluded: the last
//     pattern that matches an entry decides.
//
// An error names the first bad pattern.
func Compile(patterns []string) (*Matcher, error) {
	m := &Matcher{}
	for _, raw := range patterns {
		p, err := compile(raw)
		if err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w", raw, err)
		}
		m.patterns = append(m.patterns, p)
	}
	return m, nil
}

func compile(s string) (pattern, error) {
	var p pattern
	if strings.HasPrefix(s, "!") {
		p.negate = true
		s = s[1:]
	}
	anchored := strings.HasPrefix(s, "/")
	s = strings.TrimLeft(s, "/")
	if strings.HasSuffix(s, "/") {
		p.dirOnly = true
		s = strings.TrimRight(s, "/")
	}
	if s == "" {
		return p, errors.New("matches no entry (the imported folder itself cannot be excluded)")
	}
	if !anchored {
		p.segs = append(p.segs, "**")
	}
	for seg := range strings.SplitSeq(s, "/") {
		switch {
		case seg == "":
			continue // a//b is a/b
		case seg == "." || seg == "..":
			return p, fmt.Errorf("%q segments are not allowed (a leading / anchors a pattern to the folder)", seg)
		case seg == "**":
			if len(p.segs) > 0 && p.segs[len(p.segs)-1] == "**" {
				continue
			}
		default:
			if _, err := path.Match(seg, ""); err != nil {
				return p, err
			}
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

// Excluded says whether the entry at name (slash-separated, relative to the
// imported folder, never ".") is left out by the patterns.
func (m *Matcher) Excluded(name string, isDir bool) bool {
	if m == nil {
		return false
	}
	excluded := false
	var segs []string
	for _, p := range m.patterns {
		if p.dirOnly && !isDir || excluded != p.negate {
			continue // cannot change the outcome
		}
		if segs == nil {
			segs = strings.Split(name, "/")
		}
		if matchSegs(p.segs, segs) {
			excluded = !p.negate
		}
	}
	return excluded
}

// matchSegs matches path segments against pattern segments.
func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			pat = pat[1:]
			if len(pat) == 0 {
				// A trailing ** matches what is inside, not the
				// folder itself, so "dir/**" with "!dir/keep" keeps
				// dir/keep.
				return len(name) > 0
			}
			for i := range len(name) + 1 {
				if matchSegs(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
