package dsl_test

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/strata-build/strata/dsl"
)

// FuzzDestinations evaluates an image with an Import and a Bind to the
// fuzzed destination. Evaluation must either refuse it with a problem
// naming the Go line of the definition, or accept a destination a step
// can use as it is: absolute, clean (an import may keep a final "/",
// meaning "into this folder"), without NUL (no system call takes one), and
// for a bind not "/" (mounting over the rootfs hides it).
func FuzzDestinations(f *testing.F) {
	for _, s := range []string{
		"/usr/local/bin/", "/etc/app.conf", "/", "//", "/./", "relative", "",
		"/a/../..", "/a/./b//c/", "/../etc", "\x00", "/a\x00b", "/\x00/",
		"/${{DEST}}", "${{DEST}}", "/${{MISSING}}", "/a/${{DEST:x}}/",
	} {
		f.Add(s, "/opt/app")
	}
	f.Add("${{DEST}}", "")
	f.Add("${{DEST}}", "/")
	f.Add("${{DEST}}", "/a\x00")
	bindSrc := f.TempDir()
	f.Fuzz(func(t *testing.T, dest, param string) {
		src := dsl.URL("https://example.com/f", strings.Repeat("0", 64))
		img := dsl.New("fuzz").From(dsl.Scratch()).Import(src, dest).Bind(bindSrc, dest)
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{"DEST": param}})
		if err != nil {
			var e *dsl.Error
			if !errors.As(err, &e) {
				t.Fatalf("dest %q: %T is not a *dsl.Error: %v", dest, err, err)
			}
			for _, p := range e.Problems {
				if !strings.Contains(p.Error(), "dest_fuzz_test.go:") {
					t.Fatalf("dest %q: the problem does not name the Go line: %v", dest, p)
				}
			}
			return
		}
		img = g.Node("fuzz").Image
		im := img.Steps()[0].Import.Dest
		if !path.IsAbs(im) || strings.ContainsRune(im, 0) || path.Clean(im) != strings.TrimSuffix(im, "/") && im != "/" {
			t.Fatalf("Import(_, %q) with DEST=%q accepted as %q: want an absolute clean path without NUL", dest, param, im)
		}
		b := img.Binds()[0].Dest
		if !path.IsAbs(b) || strings.ContainsRune(b, 0) || path.Clean(b) != b || b == "/" {
			t.Fatalf("Bind(_, %q) with DEST=%q accepted as %q: want an absolute clean path other than / without NUL", dest, param, b)
		}
	})
}
