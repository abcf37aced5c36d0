// Package failure holds an image that fails, one built on it, and one
// that needs neither.
package failure

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Fine needs nothing of Bad and builds.
var Fine = dsl.New("fine").From(hello.Busybox).Run("sleep 1; echo fine > /fine")

// Bad fails with exit status 7.
var Bad = dsl.New("bad").From(hello.Busybox).Run("echo about to fail\nexit 7")

// AfterBad is built on Bad, so it cannot be built.
var AfterBad = dsl.New("afterbad").From(Bad).Run("echo never")

// Slow runs long enough for --fail-fast to stop it.
var Slow = dsl.New("slow").From(hello.Busybox).Run("sleep 60; echo slow > /slow")
