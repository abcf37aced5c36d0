// Package tarball holds the image on a rootfs tarball base that `go run
// mage.go faults` interrupts while the base is unpacked. The target
// writes the tarball (a few hundred MiB) and names it in FAULTS_TARBALL.
package tarball

import "github.com/strata-build/strata/dsl"

// Unpacked stands on the rootfs tarball FAULTS_TARBALL: its build is
// mostly the base's ingest into the store, scan and unpack.
var Unpacked = dsl.New("unpacked").From(dsl.Tarball(dsl.Param("FAULTS_TARBALL", "/nonexistent/faults.tar.gz"))).
	Run("#!/bin/sh\necho 'faults: unpacked'\necho unpacked > /unpacked\n")
