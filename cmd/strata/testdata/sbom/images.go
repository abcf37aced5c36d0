// Package sbom builds images whose SBOM lists what their package
// databases hold: dpkg's and apk's, written by a step, and a database the
// image above deletes (a whiteout the scan must honour).
package sbom

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Pkgs has two Debian packages and one Alpine package on record.
var Pkgs = dsl.New("pkgs").From(hello.Busybox).Run(`mkdir -p /var/lib/dpkg /lib/apk/db
printf 'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n' > /var/lib/dpkg/status
printf 'P:musl\nV:1.2.4-r2\nA:x86_64\n\n' > /lib/apk/db/installed
`)

// Slim deletes apk's database: its SBOM has the Debian packages only.
var Slim = dsl.New("slim").From(Pkgs).Run("rm -r /lib/apk")
