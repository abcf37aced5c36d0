//go:build mage

// The ten images of the cached-build benchmark, driven from mage.
package main

import (
	"context"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/cmd/strata/testdata/engine/ten"
)

// Build builds the ten images with the flags in STRATA_FLAGS.
func Build(ctx context.Context) error { return strata.Build(ctx, ten.All...) }
