// Package parallel holds two images that need nothing of each other, so
// that a build can run them at the same time.
package parallel

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// stamp records when the step started and ended, in seconds since boot
// (busybox's date has no sub-second format; /proc/uptime has hundredths).
func stamp(name string) string {
	return "read up _ < /proc/uptime; echo $up > /start\n" +
		"echo " + name + " > /name\n" +
		"sleep 2\n" +
		"read up _ < /proc/uptime; echo $up > /end\n"
}

// Left sleeps two seconds.
var Left = dsl.New("left").From(hello.Busybox).Run(stamp("left"))

// Right sleeps two seconds too.
var Right = dsl.New("right").From(hello.Busybox).Run(stamp("right"))
