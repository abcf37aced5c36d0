package main_test

import (
	"strings"
	"testing"
)

// TestImportsSharingABaseName builds the images of testdata/sources/
// importtwice: one file imported to two destinations, and a local file
// beside a FromImage file of the same base name. Both build; every
// destination is in the layer with its source's content; and a step
// reads the last import of the name at /.strata/imports/NAME.
func TestImportsSharingABaseName(t *testing.T) {
	needRoot(t)
	b := newSourcesBuild(t, "importtwice")
	mustStrata(t, b.dir, b.args("build")...)
	for _, c := range []struct {
		image string
		files map[string]string
	}{
		{"twice", map[string]string{"/x": "local a\n", "/y": "local a\n", "/seen": "local a\n"}},
		{"beside", map[string]string{"/local": "local a\n", "/made": "made a\n", "/seen": "made a\n"}},
	} {
		m, _ := image(t, b.layout, c.image)
		entries := layerEntries(t, b.layout, m.Layers[len(m.Layers)-1])
		for p, want := range c.files {
			if entries[strings.TrimPrefix(p, "/")] == nil {
				t.Errorf("%s: the layer lacks %s; has %v", c.image, p, keys(entries))
				continue
			}
			got := mustStrata(t, b.dir, "run", "--store", b.store, "--layout", b.layout, c.image, "--", "/bin/cat", p)
			if got != want {
				t.Errorf("%s: %s holds %q, want %q", c.image, p, got, want)
			}
		}
	}
}
