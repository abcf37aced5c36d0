// Package dirs imports a folder the test makes (named by the TREE build
// parameter) with exclusions, as a repository's root would be imported:
// with a .git, and the store and layout of the build inside it.
package dirs

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Tree copies the folder to /srv/tree, leaving out logs but keep.log and
// every node_modules folder, and records in /seen what a step sees of the
// import.
var Tree = dsl.New("tree").
	From(hello.Busybox).
	Import(dsl.Dir(dsl.RequiredParam("TREE"), dsl.Exclude("*.log", "!keep.log", "node_modules/")), "/srv/tree").
	Run("cat /srv/tree/main.txt; ls -A /.strata/imports/tree /.strata/imports/tree/sub > /seen")
