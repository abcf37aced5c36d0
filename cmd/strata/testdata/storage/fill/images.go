// Package fill holds an image whose step writes more than the store's
// filesystem holds, for the test of how a full disk is reported.
// STRATA_TEST_FILL_MIB says how many MiB the step writes.
package fill

import (
	"os"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Fill writes STRATA_TEST_FILL_MIB MiB into its rootfs.
var Fill = dsl.New("fill").From(hello.Busybox).
	Run("dd if=/dev/zero of=/big bs=1M count=" + os.Getenv("STRATA_TEST_FILL_MIB"))
