package dsl_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Every definitions driver links dsl: it must stay small, whatever the
// strata command links (BuildKit's client for --backend, umoci, the
// registry client). Outside the standard library, dsl may use only the
// OCI digest and image-spec types and strata's own small internal
// packages.
func TestDSLStaysLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/strata-build/strata/dsl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/opencontainers/go-digest",
		"github.com/opencontainers/image-spec/",
		"github.com/strata-build/strata/dsl",
		"github.com/strata-build/strata/internal/",
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			if pkg == a || strings.HasPrefix(pkg, a) || strings.HasPrefix(pkg, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("dsl depends on %s: every definitions driver would link it", pkg)
		}
	}
}
