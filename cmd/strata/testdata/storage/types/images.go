// Package types builds one chain in several layer types.
package types

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Sq is a squashfs image on the tar busybox: busybox's layer is encoded
// as squashfs for it too.
var Sq = dsl.New("sq").
	From(hello.Busybox).
	Run("echo sq > /sq; mkdir -p /etc/sub; echo deep > /etc/sub/f; rm /bin/vi").
	Entrypoint("/bin/cat", "/sq").
	LayerTypes(dsl.Squashfs)

// Both is tagged as both (tar+gzip) and both-squashfs from one run.
var Both = dsl.New("both").
	From(Sq).
	Run("echo both > /both; rm -r /etc/sub").
	LayerTypes(dsl.TarGzip, dsl.Squashfs)

// Noop changes nothing, so it adds no layer.
var Noop = dsl.New("noop").From(Both).Run("true").LayerTypes(dsl.TarGzip)

// Hidden is build-only: never tagged, but grab reads it.
var Hidden = dsl.New("hidden").From(hello.Busybox).Run("echo secret > /hidden").BuildOnly()

// Ero is tagged as ero (erofs) and ero-squashfs from one run.
var Ero = dsl.New("ero").
	From(Sq).
	Run("echo ero > /ero; rm /bin/ls; mkdir -p /etc/sub && echo new > /etc/sub/n").
	LayerTypes(dsl.Erofs, dsl.Squashfs)
