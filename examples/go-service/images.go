// Package goservice is a multi-stage build: a build-only builder compiles
// a small Go program with the host's Go toolchain, and a scratch image
// ships only the binary.
//
//	strata build
//	strata run hello-service
//
// The toolchain is bound read-only from the host (GOROOT, default
// /usr/local/go; --set GOROOT=... for another), so nothing of it reaches a
// layer, and keyed by its VERSION file (dsl.ContentKey), which every Go
// release changes: hashing the whole toolchain (hundreds of MB) at every
// build would cost more than the build. So an unchanged tree is cached
// from end to end, while a new toolchain, like a change under app/,
// rebuilds the builder and the service. The Go build cache lives in a
// cache mount, so a rebuild compiles only what changed.
package goservice

import (
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// goroot is the host's Go installation.
var goroot = dsl.Param("GOROOT", "/usr/local/go")

// Builder compiles ./app into /out/hello-service, statically linked.
var Builder = dsl.New("go-builder").
	From(hello.Busybox).
	Bind(goroot, "/usr/local/go", dsl.ReadOnly(), dsl.ContentKey("VERSION")).
	CacheMount("go-build", "/cache/go-build").
	Import(dsl.Dir("app"), "/src").
	BuildEnv("CGO_ENABLED", "0").
	BuildEnv("GOCACHE", "/cache/go-build").
	BuildEnv("GOTOOLCHAIN", "local").
	BuildEnv("HOME", "/root").
	Run("cd /src && /usr/local/go/bin/go build -trimpath -ldflags=-s -o /out/hello-service .").
	BuildOnly()

// Service is the binary alone on scratch.
var Service = dsl.New("hello-service").
	From(dsl.Scratch()).
	Import(dsl.FromImage(Builder, "/out/hello-service"), "/hello-service", dsl.Mode(0o755)).
	Entrypoint("/hello-service")
