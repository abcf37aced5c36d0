package dsl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/afero"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/dsl/aferofs"
)

// A unit test can evaluate definitions against files it makes up: with an
// in-memory Options.FS (an afero.Fs through dsl/aferofs), the files
// imported need not exist on disk.
// Relative paths resolve as always, against the folder of the Go file
// that wrote them, which is where go test runs.
func ExampleEvaluate_inMemory() {
	site := dsl.New("site").From(dsl.Scratch()).
		Import(dsl.Dir("site", dsl.Exclude("*.log")), "/srv/site")

	wd, _ := os.Getwd()
	fsys := afero.NewMemMapFs()
	write := func(name, content string) {
		// Folders made as on disk: their modes are hashed too.
		p := filepath.Join(wd, "site", name)
		fsys.MkdirAll(filepath.Dir(p), 0o755)
		afero.WriteFile(fsys, p, []byte(content), 0o644)
	}
	key := func() string {
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{site}, dsl.Options{FS: aferofs.New(fsys)})
		if err != nil {
			return err.Error()
		}
		return g.Node("site").Key.String()
	}

	write("index.html", "<h1>hi</h1>")
	before := key()
	write("debug.log", "noise")
	fmt.Println("same key with a new log file:", key() == before)
	write("index.html", "<h1>hello</h1>")
	fmt.Println("same key with index.html edited:", key() == before)
	// Output:
	// same key with a new log file: true
	// same key with index.html edited: false
}
