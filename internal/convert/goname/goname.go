// Package goname makes Go identifiers of the names converted files give
// their images (stacker layers, Dockerfile stages), and Go literals of
// their strings, for every converter.
package goname

import (
	"strconv"
	"strings"
	"unicode"
)

// Exported is the exported Go name of name: "my-app" is MyApp; a name
// that starts with no letter gets the prefix Image.
func Exported(name string) string {
	var b strings.Builder
	up := true
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	s := b.String()
	if s == "" || !unicode.IsLetter([]rune(s)[0]) {
		s = "Image" + s
	}
	return s
}

// Quote is s as a Go string literal: a raw string for a script of several
// lines that can be one (no backquote, carriage return or byte a raw
// string cannot hold), else an interpreted one.
func Quote(s string) string {
	if strings.Contains(s, "\n") && !strings.ContainsAny(s, "`\r") && strconv.CanBackquote(strings.ReplaceAll(s, "\n", "")) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}
