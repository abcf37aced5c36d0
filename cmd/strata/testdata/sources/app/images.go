// Package app pulls its base from a registry by tag, imports a checked URL
// and a file made by a build-only builder, and reads a build parameter.
package app

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// registry is the host:port of the registry holding base:1.
var registry = dsl.RequiredParam("REGISTRY")

// greeting is only read by App: changing it rebuilds App alone.
var greeting = dsl.Param("GREETING", "hello")

// Tool is a build-only builder; App takes /out/tool from it.
var Tool = dsl.New("tool").
	From(hello.Busybox).
	Run("mkdir -p /out && printf '#!/bin/sh\\necho made by the builder\\n' > /out/tool && chmod 755 /out/tool").
	BuildOnly()

// App is the image the test checks.
var App = dsl.New("app").
	From(dsl.Pull("docker://"+registry+"/base:1")).
	Import(dsl.URL("${{URLBASE}}/files/data.txt?v=1", "8bbd54c0b84849cc801ababccb80d7f5d897b11b8af433f61d86005e1caf4793"), "/etc/data.txt").
	Import(dsl.FromImage(Tool, "/out/tool"), "/usr/bin/tool", dsl.Mode(0o755)).
	Run("cat /.strata/imports/data.txt > /seen-during-run; ls /.strata/imports > /imports-list").
	Run("echo "+greeting+" > /greeting; /usr/bin/tool > /tool-output").
	Entrypoint("/bin/cat", "/greeting")

// Other reads no parameter: it stays cached whatever GREETING is.
var Other = dsl.New("other").From(hello.Busybox).Run("echo other > /other")
