// Package cachemount holds two images sharing one cache mount.
package cachemount

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// use appends a start and an end line to the shared log, a second apart:
// if both images wrote at the same time, their lines would interleave.
func use(name string) string {
	return "echo " + name + " start >> /var/cache/shared/log\n" +
		"sleep 1\n" +
		"echo " + name + " end >> /var/cache/shared/log\n" +
		"echo " + name + " > /var/cache/shared/from-" + name + "\n" +
		"echo " + name + " > /" + name + "\n"
}

// CacheA uses the shared cache.
var CacheA = dsl.New("cachea").From(hello.Busybox).CacheMount("shared", "/var/cache/shared").Run(use("cachea"))

// CacheB uses it too.
var CacheB = dsl.New("cacheb").From(hello.Busybox).CacheMount("shared", "/var/cache/shared").Run(use("cacheb"))
