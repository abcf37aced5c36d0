// Package debian builds on a Debian bookworm rootfs tarball made by
// mmdebstrap and installs a package from the Debian mirror with apt-get.
//
// Setup, once (as root; about a minute):
//
//	mkdir -p /var/cache/strata-examples
//	mmdebstrap --variant=minbase bookworm /var/cache/strata-examples/bookworm-minbase.tar.zst
//
// then, in this folder:
//
//	strata build
//	strata run hello-debian
//
// Build with --set DEBIAN_TARBALL=/other/path.tar.zst to use a tarball
// made elsewhere; the tarball's digest is part of the cache key, so a new
// tarball rebuilds everything on it.
package debian

import "github.com/strata-build/strata/dsl"

// tarball is the mmdebstrap output (plain, gzip or zstd).
var tarball = dsl.Param("DEBIAN_TARBALL", "/var/cache/strata-examples/bookworm-minbase.tar.zst")

// Bookworm is the bare Debian base, build-only: images start from it.
var Bookworm = dsl.New("bookworm").
	From(dsl.Tarball(tarball)).
	BuildOnly()

// HelloDebian installs GNU hello from the Debian mirror through the host's
// network and runs it.
var HelloDebian = dsl.New("hello-debian").
	From(Bookworm).
	BuildEnv("DEBIAN_FRONTEND", "noninteractive").
	Run(`apt-get update
apt-get install -y --no-install-recommends hello
# Package lists and caches are large; apt's and dpkg's logs hold the time
# of the run, which would make every build's layer differ.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log
hello`).
	Entrypoint("/usr/bin/hello")
