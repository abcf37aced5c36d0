// Package publish has an image that imports a file from a build-only
// image: publishing it needs its own layer and its parent's, not the
// build-only image's.
package publish

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Tool is build-only; App takes /out/file from it.
var Tool = dsl.New("tool").
	From(hello.Busybox).
	Run("mkdir -p /out && echo made by tool > /out/file").
	BuildOnly()

// App is published.
var App = dsl.New("app").
	From(hello.Busybox).
	Import(dsl.FromImage(Tool, "/out/file"), "/file").
	Entrypoint("/bin/cat", "/file")
