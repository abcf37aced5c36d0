// Package backendbases builds on a base pulled from a registry and on one
// from a local OCI layout, the bases the BuildKit backend's test has not
// covered with the examples (scratch, tarball, another image).
package backendbases

import "github.com/strata-build/strata/dsl"

// FromRegistry is on base:1 of the test's plain-HTTP registry.
var FromRegistry = dsl.New("bk-from-registry").
	From(dsl.Pull("docker://"+dsl.RequiredParam("REGISTRY")+"/base:1", dsl.Insecure())).
	Run("echo pulled > /pulled; rm /bin/ls")

// FromLayout is on the busybox image of a layout the test built.
var FromLayout = dsl.New("bk-from-layout").
	From(dsl.Layout(dsl.RequiredParam("BASE_LAYOUT"), "busybox")).
	Run("echo from a layout > /layout; mkdir -p /srv/new && touch /srv/new/f")
