// Package w2 is the Debian workload W2 of `go run mage.go
// benchWorkloads`: on a bookworm minbase tarball made by mmdebstrap, one
// image copies /usr and writes many 1-KiB files and 200 MiB of random
// data, the next deletes the documentation.
package w2

import "github.com/strata-build/strata/dsl"

// Base is the mmdebstrap tarball (`mmdebstrap --variant=minbase bookworm
// FILE.tar.zst`), as examples/debian uses it; the benchmark passes
// --set W2_TARBALL=... .
var Base = dsl.New("w2-base").
	From(dsl.Tarball(dsl.Param("W2_TARBALL", "/var/cache/strata-examples/bookworm-minbase.tar.zst"))).
	BuildOnly()

// BaseLayers is the base tagged as an image: built into the benchmark's
// seed store in each tar type, it leaves there the tarball recompressed as
// the workload's images list it, which a store makes once per base.
var BaseLayers = dsl.New("w2-base-layers").From(Base)

// FillScript splits random data into 1-KiB files (one split per folder,
// not one process per file, so the step's time is the file system's) in
// 20 folders of 1,000, after a copy of /usr: many files of every size
// that are already in the lower layer.
const FillScript = `#!/bin/sh
set -e
cp -a /usr /usr-copy
for d in $(seq 0 19); do
	mkdir -p /data/small/$d
	head -c 1024000 /dev/urandom | (cd /data/small/$d && split -b 1024 -a 3 - f)
done
head -c 209715200 /dev/urandom > /data/random
`

// PruneScript deletes the documentation; rev only changes the script (see
// w1.PruneScript).
func PruneScript(rev string) string {
	return "#!/bin/sh\nset -e\nrm -rf /usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian\n: rev " + rev + "\n"
}

// Fill is image a.
var Fill = dsl.New("w2-fill").From(Base).Run(FillScript)

// Prune is image b, the top image; the benchmark edits the marker below
// in a copy of this file.
var Prune = dsl.New("w2-prune").From(Fill).Run(PruneScript(dsl.Param("W2_TOP", "0")) + "# edit 0\n")
