// Package offpath holds an image and one built on it whose step leaves a
// mark in a host folder, so that a test can see the second image's steps
// run while the first one's layer is still being encoded.
package offpath

import (
	"os"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Parent writes a file.
var Parent = dsl.New("parent").From(hello.Busybox).Run("echo parent > /parent")

// Child marks the folder STRATA_TEST_SIGNAL names (bound at /signal) when
// its step runs.
var Child = dsl.New("child").From(Parent).
	Bind(os.Getenv("STRATA_TEST_SIGNAL"), "/signal").
	Run("touch /signal/child-ran\necho child > /child")
