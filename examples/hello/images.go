// Package hello is the smallest complete strata example: a busybox base
// made from the host's static busybox, and an image built on it.
//
// Build it with the CLI from this folder:
//
//	strata build && strata run hello
//
// or from mage (see magefile.go): mage build.
package hello

import "github.com/strata-build/strata/dsl"

// Busybox is a minimal base made from the host's static busybox
// (Debian's busybox-static), so no network or registry is needed.
var Busybox = dsl.New("busybox").
	From(dsl.Scratch()).
	Import(dsl.File("/bin/busybox"), "/bin/busybox").
	Run("#!/bin/busybox sh\n/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /tmp /etc /root\n/bin/busybox --install -s\n")

// Hello greets.
var Hello = dsl.New("hello").
	From(Busybox).
	Import(dsl.File("greeting.txt"), "/etc/greeting").
	Run("echo built > /built; rm /bin/vi").
	Env("GREETING", "hi").
	Label("org.opencontainers.image.description", "strata's hello example").
	Entrypoint("/bin/cat", "/etc/greeting")
