// Package failinglib holds a definition whose build fails on purpose in a
// step that a library function wrote.
package failinglib

import "github.com/strata-build/strata/cmd/strata/testdata/failinglib/steps"

// Fails is made by a library function whose step exits 4.
var Fails = steps.Failing("fails-in-lib")
