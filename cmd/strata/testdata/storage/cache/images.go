// Package cache holds definitions whose inputs the storage tests change one
// at a time, to check that exactly the affected images rebuild. Its inputs
// come from the environment the tests set:
//
//	STRATA_TEST_INPUT   a folder holding the file x imported by b
//	STRATA_TEST_SCRIPT  the run step of d
//	STRATA_PARAM_MSG    a build parameter read by b's run step
package cache

import (
	"os"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

var input = os.Getenv("STRATA_TEST_INPUT")

// A is built on busybox.
var A = dsl.New("a").From(hello.Busybox).Run("echo a > /a")

// B imports x and writes the build parameter MSG.
var B = dsl.New("b").
	From(A).
	Import(dsl.File(input+"/x"), "/x").
	Run("echo ${{MSG}} > /msg")

// C is built on b.
var C = dsl.New("c").From(B).Run("cat /x > /c")

// D is a sibling of b whose run step the test changes.
var D = dsl.New("d").From(A).Run(os.Getenv("STRATA_TEST_SCRIPT"))

// E reads a host folder through a bind, so it is never cached.
var E = dsl.New("e").From(A).Bind(input, "/in", dsl.ReadOnly()).Run("cat /in/x > /e")
