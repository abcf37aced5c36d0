// Package failing holds definitions whose build fails on purpose.
package failing

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Fails exits 3 in its second step.
var Fails = dsl.New("fails").
	From(hello.Busybox).
	Run("echo first step ran").
	Run("echo about to fail\nexit 3\necho not reached")
