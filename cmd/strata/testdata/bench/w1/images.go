// Package w1 is the stacker-shaped workload W1 of `go run mage.go
// benchWorkloads`: on busybox, one image writes many small files and
// 100 MiB of random data, the next deletes three of its folders.
package w1

import "github.com/strata-build/strata/dsl"

// Busybox is examples/hello's base, written again rather than imported:
// the benchmark's magefile imports this package for its scripts, and
// examples/hello holds a magefile of its own that the mage build tag
// would pull in.
var Busybox = dsl.New("busybox").
	From(dsl.Scratch()).
	Import(dsl.File("/bin/busybox"), "/bin/busybox").
	Run("#!/bin/busybox sh\n/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /tmp /etc /root\n/bin/busybox --install -s\n")

// FillScript writes 20,000 small files in 20 folders with the shell's
// builtins (no process per file, as a generated tree would be written)
// and 100 MiB from /dev/urandom: the layer's digest differs every build,
// which only matters to timing as one more incompressible blob.
const FillScript = `#!/bin/sh
set -e
i=0
while [ $i -lt 20 ]; do mkdir -p /data/d$i; i=$((i+1)); done
i=0
while [ $i -lt 20000 ]; do echo "small file number $i of w1" > /data/d$((i % 20))/f$i; i=$((i+1)); done
head -c 104857600 /dev/urandom > /data/random
`

// PruneScript deletes three of FillScript's folders. rev only changes the
// script, so that the benchmark can rebuild this image alone through
// --set W1_TOP=... .
func PruneScript(rev string) string {
	return "#!/bin/sh\nset -e\nrm -rf /data/d0 /data/d1 /data/d2\n: rev " + rev + "\n"
}

// Fill is image 1.
var Fill = dsl.New("w1-fill").From(Busybox).Run(FillScript)

// Prune is image 2, the top image; the benchmark edits the marker below
// in a copy of this file to time the edit-to-rebuild loop.
var Prune = dsl.New("w1-prune").From(Fill).Run(PruneScript(dsl.Param("W1_TOP", "0")) + "# edit 0\n")
