// Package backend holds the images the BuildKit backend's test builds
// both here and on BuildKit, to compare: every kind of import, a secret,
// a cache mount, the build environment, a working folder, a #! script, a
// deletion from the parent, labels made by a script; and two that must
// fail.
package backend

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Tool is a build-only builder the contract image takes a file and a
// folder from.
var Tool = dsl.New("bk-tool").
	From(hello.Busybox).
	Run("mkdir -p /out/share/sub && echo tool > /out/tool && echo data > /out/share/sub/data && chmod 640 /out/share/sub/data").
	BuildOnly()

// Contract is compared file by file, built here and on BuildKit.
var Contract = dsl.New("bk-contract").
	From(hello.Busybox).
	BuildEnv("BUILD_ONLY", "yes").
	Env("RUNTIME", "env").
	WorkDir("/work/dir").
	Import(dsl.Dir(dsl.RequiredParam("TREE"), dsl.Exclude("*.log", "!keep.log", "node_modules/")), "/srv/tree", dsl.Mode(0o750), dsl.Owner(1000, 1000)).
	Import(dsl.File("note.txt"), "/etc/", dsl.Mode(0o600)).
	Import(dsl.File("link.txt"), "/etc/linked").
	Import(dsl.URL("${{URLBASE}}/data.txt", "37613160c3ed045bd13fdbfb4790ec295fc9c1818a9b07c15b6556e27aff93dd"), "/etc/data.txt").
	Import(dsl.FromImage(Tool, "/out/tool"), "/usr/bin/tool", dsl.Mode(0o755)).
	Import(dsl.FromImage(Tool, "/out/share"), "/usr/share/tool").
	Secret("token", dsl.SecretEnv("BK_TOKEN")).
	CacheMount("bk-cache", "/var/cache/bk").
	Run(`pwd > /pwd
echo "$BUILD_ONLY $RUNTIME" > /env
hostname > /hostname
ls -A /.strata/imports > /imports
cat /.strata/imports/data.txt > /data-during-run
ls -A /.strata/imports/tree > /tree-during-run
test "$(cat /run/secrets/token)" = s3cret && echo secret-ok > /secret
echo run >> /var/cache/bk/runs
rm /bin/vi`).
	Run("#!/bin/sh\necho shebang > /shebang\n").
	GenerateLabels("echo v1 > /stacker/oci-labels/generated").
	Entrypoint("/bin/cat", "/env")

// Fails exits 3 in its second step.
var Fails = dsl.New("bk-fails").
	From(hello.Busybox).
	Run("echo first step ran").
	Run("echo about to fail\nexit 3")

// Bound binds a host folder, which no remote worker can see.
var Bound = dsl.New("bk-bound").
	From(hello.Busybox).
	Bind("/etc", "/mnt/etc", dsl.ReadOnly()).
	Run("ls /mnt/etc")
