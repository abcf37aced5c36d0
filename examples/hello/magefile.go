//go:build mage

// The same images, driven from mage instead of the strata CLI:
//
//	mage build
//
// strata build's flags and image names pass through STRATA_FLAGS:
//
//	STRATA_FLAGS="--jobs 2 --no-cache" mage build
//	STRATA_FLAGS="--dry-run" mage build
package main

import (
	"context"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/examples/hello"
)

// Build builds the hello image and its busybox base into ./oci.
func Build(ctx context.Context) error {
	return strata.Build(ctx, hello.Hello)
}
