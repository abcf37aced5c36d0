// Package zstdearly builds a tar+gzip image on a .tar.zst rootfs whose
// step waits, watching the store (bound read-only), for the base's
// recompression to gzip: it must run beside the steps, not after them.
package zstdearly

import "github.com/strata-build/strata/dsl"

var (
	rootfs = dsl.RequiredParam("ROOTFS")
	store  = dsl.RequiredParam("STORE")
)

// Gzip fails its step when the store shows no gzip copy of its base
// within a minute.
var Gzip = dsl.New("gzip").From(dsl.Tarball(rootfs)).
	Bind(store, "/store", dsl.ReadOnly()).
	Run(`i=0
until ls /store/tarballs/*.tar-gzip.json >/dev/null 2>&1; do
	i=$((i+1))
	if [ $i -gt 600 ]; then echo "the base was not recompressed while the step ran" >&2; exit 1; fi
	sleep 0.1
done
echo hi > /hi`)
