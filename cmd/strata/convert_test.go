package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// convertYAML are three stacker.yaml files as stacker's documentation
// describes them: app has two prerequisites, tools has one; between them
// they use tar, built and scratch bases, imports with and without dest
// (local and stacker://), substitutions with and without a default given
// on the command line, build_only, every config directive and one
// directive strata has no equivalent for (arch).
var convertYAML = map[string]string{
	"stacker/base/stacker.yaml": `# Busybox is the shell every other layer runs on.
busybox:
  from:
    type: tar
    url: rootfs.tar
  run: |
    /bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /etc /tmp
    /bin/busybox --install -s
    echo base > /etc/base
`,
	"stacker/tools/stacker.yaml": `config:
  prerequisites:
    - ../base/stacker.yaml
builder:
  from:
    type: built
    tag: busybox
  imports:
    - tool.sh
  run:
    - mkdir -p /out
    - cp /stacker/imports/tool.sh /out/tool.sh
    - echo ${{TOOL_VERSION:1.2}} > /out/version
    - echo $STACKER_LAYER_NAME > /out/layer
  build_only: true
`,
	"stacker/tools/tool.sh": "#!/bin/sh\necho tool \"$@\"\n",
	"stacker/app/stacker.yaml": `config:
  prerequisites:
    - ../base/stacker.yaml
    - ../tools/stacker.yaml
# App is the application.
app:
  from:
    type: built
    tag: busybox
  imports:
    - path: stacker://builder/out/tool.sh
      dest: /usr/local/bin/tool
      mode: 0755
    - stacker://builder/out/version
    - path: greeting.txt
      dest: /etc/greeting
      uid: 1000
      gid: 1000
  run: |
    cat /stacker/imports/version > /etc/tool-version
    echo "${{GREETING}} $BUILD_VAR" > /etc/message
  build_env:
    BUILD_VAR: from-build-env
  environment:
    APP_MODE: ${{MODE:prod}}
  labels:
    org.example.app: "1"
  annotations:
    org.example.note: converted
  volumes:
    - /data
  entrypoint: /usr/local/bin/tool --serve
  cmd: ["--port", "80"]
  working_dir: /srv
  runtime_user: "1000:1000"
  generate_labels: |
    cat /etc/tool-version > /stacker/oci-labels/tool.version
  arch: amd64
message:
  from:
    type: scratch
  imports:
    - path: stacker://app/etc/message
      dest: /message
`,
	"stacker/app/greeting.txt": "hello\n",
	"main.go":                  "package main\n\nfunc main() {}\n",
}

// TestConvertEndToEnd converts the stacker.yaml of an application with
// the real strata binary (which converts its prerequisites with it), builds
// the converted packages and checks the images against what the yaml says.
func TestConvertEndToEnd(t *testing.T) {
	needRoot(t)
	dir := userModule(t, "example.com/conv", convertYAML)
	if err := os.WriteFile(filepath.Join(dir, "stacker/base/rootfs.tar"), busyboxTar(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}

	out := mustStrata(t, dir, "convert", "stacker/app/stacker.yaml", "-o", "images")
	for _, want := range []string{
		"wrote images/base/images.go (package base: busybox)",
		"wrote images/tools/images.go (package tools: builder)",
		"wrote images/app/images.go (package app: app, message)",
		"layer app: arch: amd64 has no strata equivalent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("convert output lacks %q:\n%s", want, out)
		}
	}
	src, err := os.ReadFile(filepath.Join(dir, "images/app/images.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"example.com/conv/images/base"`, `"example.com/conv/images/tools"`,
		`greeting = dsl.RequiredParam("GREETING")`, `mode     = dsl.Param("MODE", "prod")`,
		"// App is the application.", "From(base.Busybox)", `dsl.FromImage(tools.Builder, "/out/tool.sh")`,
		"// stacker: arch: amd64 has no strata equivalent",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("images/app/images.go lacks %q:\n%s", want, src)
		}
	}
	goIn(t, dir, "vet", "./images/...")
	if out, code := strata(t, dir, "convert", "stacker/app/stacker.yaml", "-o", "images"); code == 0 || !strings.Contains(out, "without --force") {
		t.Errorf("a second convert without --force: exit %d:\n%s", code, out)
	}

	b := newBuild(t, dir)
	pkgs := []string{"./images/base", "./images/tools", "./images/app"}
	b.must(nil, append([]string{"build", "--set", "GREETING=hi"}, pkgs...)...)

	tags := tagsOf(t, b.layout)
	if !slices.Contains(tags, "app") || !slices.Contains(tags, "message") || slices.Contains(tags, "builder") {
		t.Errorf("tags %v: want app and message, and builder (build_only) not tagged", tags)
	}

	tree := filepath.Join(t.TempDir(), "app")
	b.must(nil, "grab", "--set", "GREETING=hi", "./images/app", "app:/", tree)
	files := map[string]string{
		"etc/base":           "base\n",
		"etc/message":        "hi from-build-env\n",
		"etc/tool-version":   "1.2\n",
		"etc/greeting":       "hello\n",
		"usr/local/bin/tool": convertYAML["stacker/tools/tool.sh"],
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(tree, name))
		if err != nil || string(got) != want {
			t.Errorf("app:/%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(tree, "usr/local/bin/tool")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("app:/usr/local/bin/tool: %v %v, want mode 0755", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(tree, "stacker")); !os.IsNotExist(err) {
		t.Errorf("app:/stacker is in the image (%v): stacker never puts it there", err)
	}

	m, c := image(t, b.layout, "app")
	cfg := c.Config
	if !slices.Contains(cfg.Env, "APP_MODE=prod") || slices.ContainsFunc(cfg.Env, func(e string) bool { return strings.HasPrefix(e, "BUILD_VAR=") }) {
		t.Errorf("env %q: want APP_MODE=prod and no BUILD_VAR", cfg.Env)
	}
	if cfg.Labels["org.example.app"] != "1" || cfg.Labels["tool.version"] != "1.2" {
		t.Errorf("labels %v: want org.example.app=1 and tool.version=1.2 (generate_labels)", cfg.Labels)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/usr/local/bin/tool", "--serve"}) || !slices.Equal(cfg.Cmd, []string{"--port", "80"}) {
		t.Errorf("entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if cfg.WorkingDir != "/srv" || cfg.User != "1000:1000" {
		t.Errorf("working dir %q user %q", cfg.WorkingDir, cfg.User)
	}
	if _, ok := cfg.Volumes["/data"]; !ok || len(cfg.Volumes) != 1 {
		t.Errorf("volumes %v: want /data", cfg.Volumes)
	}
	// app's own layer: the import's owner, and nothing of /stacker.
	top := layerEntries(t, b.layout, m.Layers[len(m.Layers)-1])
	if h := top["etc/greeting"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
		t.Errorf("app's layer: etc/greeting is %+v, want owned by 1000:1000", h)
	}
	for name := range top {
		if strings.Contains(name, "stacker") { // .wh.stacker too
			t.Errorf("app's layer holds %s: imports without dest are never part of the image", name)
		}
	}
	if m.Annotations["org.example.note"] != "converted" {
		t.Errorf("manifest annotations %v: want org.example.note=converted", m.Annotations)
	}

	// A build-only image is built, not tagged, and can be grabbed.
	layer := filepath.Join(t.TempDir(), "layer")
	b.must(nil, "grab", "--set", "GREETING=hi", "./images/tools", "builder:/out/layer", layer)
	if got, _ := os.ReadFile(layer); string(got) != "builder\n" {
		t.Errorf("builder:/out/layer = %q, want STACKER_LAYER_NAME builder", got)
	}

	msg := filepath.Join(t.TempDir(), "message")
	b.must(nil, "grab", "--set", "GREETING=hi", "./images/app", "message:/", msg)
	entries, err := os.ReadDir(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "message" {
		t.Errorf("message:/ holds %v, want only message", entries)
	}
	if got, _ := os.ReadFile(filepath.Join(msg, "message")); string(got) != "hi from-build-env\n" {
		t.Errorf("message:/message = %q", got)
	}
}

// TestConvertDockerfile converts a multi-stage Dockerfile (a scratch
// stage with busybox, a build stage using a build argument, a cache mount
// and the build context, a final stage copying from it with --chown) with
// the real command, builds it and runs the image.
func TestConvertDockerfile(t *testing.T) {
	needRoot(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static")
	}
	dir := userModule(t, "example.com/dock", map[string]string{
		"docker/app/hello.txt": "hi from the context\n",
		"docker/Dockerfile": `ARG GREETING=hello
FROM scratch AS tools
COPY busybox /bin/busybox
COPY busybox /bin/sh
RUN /bin/busybox --install -s /bin

FROM tools AS build
ARG GREETING
WORKDIR /src
COPY app/ ./
RUN --mount=type=cache,target=/root/.cache echo "$GREETING from build" > out.txt && cat hello.txt >> out.txt
RUN ["/bin/sh", "-c", "echo exec form >> out.txt"]
HEALTHCHECK CMD true

FROM tools
LABEL org.example.stage=final
COPY --from=build --chown=1000:1000 /src/out.txt /app/
EXPOSE 8080
ENTRYPOINT ["/bin/cat"]
CMD ["/app/out.txt"]
`,
	})
	if err := os.WriteFile(filepath.Join(dir, "docker/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	out := mustStrata(t, dir, "convert", "docker/Dockerfile", "-o", "images", "--name", "web")
	for _, want := range []string{"wrote images/images.go (package images; the last stage is image \"web\")", "docker/Dockerfile:13: HEALTHCHECK has no strata equivalent"} {
		if !strings.Contains(out, want) {
			t.Errorf("convert output lacks %q:\n%s", want, out)
		}
	}
	goIn(t, dir, "vet", "./images")
	b := newBuild(t, dir)
	b.must(nil, "build", "--set", "GREETING=bonjour", "./images")
	if tags := tagsOf(t, b.layout); !slices.Equal(tags, []string{"web"}) {
		t.Errorf("tags %v: want only web, the last stage", tags)
	}
	m, cfg := image(t, b.layout, "web")
	if cfg.Config.Labels["org.example.stage"] != "final" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/bin/cat" {
		t.Errorf("web's config: %+v", cfg.Config)
	}
	if _, ok := cfg.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("web exposes %v", cfg.Config.ExposedPorts)
	}
	entries := layerEntries(t, b.layout, m.Layers[len(m.Layers)-1])
	if h := entries["app/out.txt"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
		t.Errorf("app/out.txt in web's layer: %+v", h)
	}
	if got := mustStrata(t, dir, "run", "--store", b.store, "--layout", b.layout, "web"); got != "bonjour from build\nhi from the context\nexec form\n" {
		t.Errorf("web prints %q", got)
	}
	if out, code := strata(t, dir, "convert", "docker/Dockerfile", "stacker.yaml"); code == 0 || !strings.Contains(out, "one Dockerfile at a time") {
		t.Errorf("a Dockerfile with another file: exit %d\n%s", code, out)
	}
}

// TestConvertCommand: where strata convert writes, which package name it
// chooses, what it refuses.
func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"one/stacker.yaml":   "my-app:\n  from:\n    type: scratch\n  arch: arm64\n",
		"two/stacker.yaml":   "config:\n  prerequisites: [../one/stacker.yaml]\nuser:\n  from:\n    type: built\n    tag: my-app\n",
		"web-site/other.go":  "package site\n",
		"web-site/README.md": "not go\n",
	})
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	out := mustStrata(t, dir, "convert", "one/stacker.yaml", "-o", "my-images")
	if !strings.Contains(out, "wrote my-images/images.go (package myimages: my-app)") ||
		!strings.Contains(out, "one/stacker.yaml: layer my-app: arch: arm64 has no strata equivalent") {
		t.Errorf("convert output:\n%s", out)
	}
	if src := read("my-images/images.go"); !strings.Contains(src, "package myimages") || !strings.Contains(src, `var MyApp = dsl.New("my-app")`) {
		t.Errorf("my-images/images.go:\n%s", src)
	}

	// The package of Go files already in the folder wins over its name.
	mustStrata(t, dir, "convert", "one/stacker.yaml", "-o", "web-site")
	if src := read("web-site/images.go"); !strings.Contains(src, "package site") {
		t.Errorf("web-site/images.go should join package site:\n%s", src)
	}

	if out, code := strata(t, dir, "convert", "one/stacker.yaml", "-o", "my-images", "--package", "imgs"); code == 0 || !strings.Contains(out, "without --force") {
		t.Errorf("overwrite without --force: exit %d:\n%s", code, out)
	}
	mustStrata(t, dir, "convert", "one/stacker.yaml", "-o", "my-images", "--package", "imgs", "--force")
	if src := read("my-images/images.go"); !strings.Contains(src, "package imgs") {
		t.Errorf("--package imgs --force:\n%s", src)
	}

	// Prerequisites become imports, so their packages need a module.
	if out, code := strata(t, dir, "convert", "two/stacker.yaml", "-o", "both"); code == 0 || !strings.Contains(out, "-o must be in a Go module") {
		t.Errorf("prerequisites outside a module: exit %d:\n%s", code, out)
	}
	if out, code := strata(t, dir, "convert", "two/stacker.yaml", "--package", "x"); code != 2 || !strings.Contains(out, "--package names one package") {
		t.Errorf("--package with prerequisites: exit %d:\n%s", code, out)
	}
	writeFiles(t, dir, map[string]string{"go.mod": "module example.com/m\n"})
	out = mustStrata(t, dir, "convert", "two/stacker.yaml", "-o", "both")
	if !strings.Contains(out, "wrote both/one/images.go (package one: my-app)") || !strings.Contains(out, "wrote both/two/images.go (package two: user)") {
		t.Errorf("convert with a prerequisite:\n%s", out)
	}
	if src := read("both/two/images.go"); !strings.Contains(src, `"example.com/m/both/one"`) || !strings.Contains(src, "From(one.MyApp)") {
		t.Errorf("both/two/images.go:\n%s", src)
	}

	if out, code := strata(t, dir, "convert", "missing/stacker.yaml"); code == 0 || !strings.Contains(out, "missing/stacker.yaml") {
		t.Errorf("a missing file: exit %d:\n%s", code, out)
	}
	if out, code := strata(t, dir, "convert"); code != 2 {
		t.Errorf("no file: exit %d:\n%s", code, out)
	}
}
