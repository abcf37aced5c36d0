// Package labels builds images whose labels come from their own files,
// as stacker's generate_labels makes them.
package labels

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Versioned labels itself with the version its step installed; the
// labels script's own files are thrown away.
var Versioned = dsl.New("versioned").From(hello.Busybox).
	Run("mkdir -p /opt/app && echo 1.2.3 > /opt/app/VERSION").
	Label("org.example.static", "yes").
	Annotation("org.example.team", "platform").
	Volume("/data").
	Expose("8080").
	GenerateLabels(`
cat /opt/app/VERSION > /stacker/oci-labels/org.opencontainers.image.version
echo scratch > /made-by-labels
printf '%s' "` + dsl.Param("LABEL_FLAVOUR", "plain") + `" > /stacker/oci-labels/flavour
`)

// Child inherits the generated labels.
var Child = dsl.New("child").From(Versioned).Run("echo child > /child")

// NoSteps has no step, only labels.
var NoSteps = dsl.New("nosteps").From(Versioned).GenerateLabels("echo only > /stacker/oci-labels/only")

// BadLabel writes a folder where a label file belongs.
var BadLabel = dsl.New("badlabel").From(hello.Busybox).GenerateLabels("mkdir /stacker/oci-labels/notafile")

// FailLabel's labels script fails.
var FailLabel = dsl.New("faillabel").From(hello.Busybox).GenerateLabels("echo about to fail; exit 3")
