package dsl_test

import (
	"context"
	"fmt"

	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
)

// Definitions are values: deriving two images from one leaves it as it
// was, and neither derived image sees the other's steps.
func ExampleNew() {
	base := dsl.New("tools").
		From(dsl.Scratch()).
		Import(dsl.File("testdata/greeting.txt"), "/etc/greeting")

	withCurl := base.Run("install curl")
	withGit := base.Run("install git")

	fmt.Println(len(base.Steps()), len(withCurl.Steps()), len(withGit.Steps()))
	fmt.Println(withGit.Steps()[1].Script)
	// Output:
	// 1 2 2
	// install git
}

// Definitions are testable without root: evaluate them and assert on the
// graph and the image config.
func ExampleEvaluate() {
	app := dsl.New("app").
		From(dsl.New("base").From(dsl.Scratch()).Env("PATH", "/bin")).
		Run("touch /app").
		Env("MODE", "prod").
		Entrypoint("/app")

	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{app}, dsl.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range g.Nodes {
		fmt.Println(n.Name, len(n.Key))
	}
	cfg := g.Node("app").Config(ispec.ImageConfig{})
	fmt.Println(cfg.Env, cfg.Entrypoint)
	// Output:
	// base 71
	// app 71
	// [PATH=/bin MODE=prod] [/app]
}

// Reusable building blocks are plain functions.
func ExampleOption() {
	withMotd := func(text string) dsl.Option {
		return func(img *dsl.Image) *dsl.Image {
			return img.Run("echo '"+text+"' > /etc/motd").Label("motd", text)
		}
	}
	img := dsl.New("greeter").From(dsl.Scratch()).With(withMotd("hi"))
	fmt.Println(img.Steps()[0].Script)
	// Output: echo 'hi' > /etc/motd
}

// A folder import leaves out what an image does not need; the left-out
// files are not part of the cache key either, so editing a log or a
// dependency folder rebuilds nothing.
func ExampleExclude() {
	app := dsl.New("app").
		From(dsl.Scratch()).
		Import(dsl.Dir("testdata", dsl.Exclude("*.log", "node_modules/", "!keep.log")), "/srv/app")

	src := app.Steps()[0].Import.Source.(*dsl.LocalSource)
	fmt.Println(src.Exclude)
	// Output:
	// [*.log node_modules/ !keep.log]
}
