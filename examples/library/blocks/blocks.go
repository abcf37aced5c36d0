// Package blocks is a small typed library of reusable image building
// blocks: functions that return definitions (Base, App) or options that
// add steps and config (WithMotd, WithUser). Import it from any
// definitions package; go doc documents it like any Go package.
package blocks

import (
	"fmt"
	"strings"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// Base is the common base of a team's images: busybox with a message of
// the day naming the team.
func Base(team string) *dsl.Image {
	return dsl.New(team + "-base").
		From(hello.Busybox).
		With(WithMotd("maintained by " + team)).
		BuildOnly()
}

// WithMotd writes text to /etc/motd.
func WithMotd(text string) dsl.Option {
	return func(img *dsl.Image) *dsl.Image {
		return img.Run(fmt.Sprintf("printf '%%s\\n' %s > /etc/motd", shellQuote(text)))
	}
}

// WithUser adds an unprivileged user with a fixed uid and makes it the
// image's user, so files it owns are predictable across images.
func WithUser(name string, uid int) dsl.Option {
	return func(img *dsl.Image) *dsl.Image {
		return img.
			Run(fmt.Sprintf("echo '%s:x:%d:%d::/home/%s:/bin/sh' >> /etc/passwd && mkdir -p /home/%s && chown %d:%d /home/%s", name, uid, uid, name, name, uid, uid, name)).
			User(name)
	}
}

// App is an image running script (a shell script) as its entrypoint on
// base, as the user app (uid 1000).
func App(name string, base *dsl.Image, script string) *dsl.Image {
	return dsl.New(name).
		From(base).
		Import(dsl.File("entrypoint.sh"), "/usr/local/bin/entrypoint", dsl.Mode(0o755)).
		Run(fmt.Sprintf("printf '%%s\\n' %s > /etc/app-script", shellQuote(script))).
		With(WithUser("app", 1000)).
		Label("org.opencontainers.image.title", name).
		Entrypoint("/usr/local/bin/entrypoint")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
