// Package goname makes Go identifiers of the names converted files give
// their images (stacker layers, Dockerfile stages), for every converter.
package goname

import (
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
