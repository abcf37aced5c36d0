// Package environ edits environment lists: the KEY=value strings of
// exec(2) and of an image config's Env.
package environ

import (
	"slices"
	"strings"
)

// Merge returns a copy of env with vars, KEY=value strings, set in order:
// each replaces the first entry of the same KEY, or is appended when env
// has none. env itself is not changed.
func Merge(env []string, vars ...string) []string {
	out := slices.Clone(env)
	for _, v := range vars {
		k := key(v)
		if i := slices.IndexFunc(out, func(e string) bool { return key(e) == k }); i >= 0 {
			out[i] = v
		} else {
			out = append(out, v)
		}
	}
	return out
}

func key(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}
