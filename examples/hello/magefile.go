//go:build mage

// The same images, driven from mage instead of the strata CLI:
//
//	mage build
//
// strata build's flags and image names pass through STRATA_FLAGS:
//
//	STRATA_FLAGS="--jobs 2 --no-cache" mage build
//	STRATA_FLAGS="--dry-run" mage build
//
// and published (built first when needed) where PUBLISH_TO says, a
// registry prefix or a local layout:
//
//	PUBLISH_TO=registry.example.com/team mage publish
//	PUBLISH_TO=oci:/tmp/out mage publish
package main

import (
	"context"
	"errors"
	"os"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/examples/hello"
)

// Build builds the hello image and its busybox base into the module's
// store and oci layout.
func Build(ctx context.Context) error {
	return strata.Build(ctx, hello.Hello)
}

// Publish builds hello if it is not built or is stale, then publishes it
// to $PUBLISH_TO.
func Publish(ctx context.Context) error {
	to := os.Getenv("PUBLISH_TO")
	if to == "" {
		return errors.New("set PUBLISH_TO to REGISTRY/PREFIX or oci:PATH")
	}
	return strata.Publish(ctx, to, hello.Hello)
}
