package dockerfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const multiStage = `# syntax=docker/dockerfile:1
ARG GREETING=hello
ARG BASE=debian

FROM scratch AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM tools AS build
ARG GREETING
WORKDIR /src
COPY app/ ./
RUN echo "$GREETING from build" > out.txt
RUN --mount=type=cache,target=/root/.cache,id=rc true
RUN --network=none true
HEALTHCHECK CMD true

FROM ${BASE}:12 AS other
ADD https://example.com/a.tgz /opt/
ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/b.txt /opt/b.txt
COPY --chown=app:app app /app
COPY *.txt /txt/

FROM tools
LABEL org.example.stage=final version="1.0"
ENV APP_HOME=/app PATH=/app/bin:$PATH
COPY --from=build --chown=1000:1000 --chmod=0640 /src/out.txt /app/
USER 1000
EXPOSE 8080 53/udp
VOLUME ["/data"]
ENTRYPOINT cat /app/out.txt
STOPSIGNAL SIGTERM
`

func TestConvertMultiStage(t *testing.T) {
	ctx := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctx, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctx, "busybox"), []byte("x"), 0o755)
	out := filepath.Join(ctx, "images")
	r, err := Convert([]byte(multiStage), Options{Package: "images", Name: "app", File: "Dockerfile", Context: ctx, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	src := string(r.Source)
	for _, want := range []string{
		`argGREETING = dsl.Param("GREETING", "hello")`,
		`var Tools = dsl.New("tools").`,
		`Import(dsl.File("../busybox"), "/bin/busybox")`,
		"exec '/bin/busybox' '--install' '-s' '/bin'",
		`BuildEnv("GREETING", argGREETING)`,
		`Import(dsl.Dir("../app"), "/src/")`,
		`CacheMount("rc", "/root/.cache")`,
		`From(dsl.Pull("docker://"+argBASE+":12"))`,
		`Import(dsl.URL("https://example.com/b.txt", "0000000000000000000000000000000000000000000000000000000000000000"), "/opt/b.txt")`,
		`var App = dsl.New("app").`,
		`Label("version", "1.0")`,
		`Env("PATH", "/app/bin:${PATH}")`,
		`Import(dsl.FromImage(Build, "/src/out.txt"), "/app/", dsl.Owner(1000, 1000), dsl.Mode(0o640))`,
		`Expose("53/udp", "8080")`,
		`Volume("/data")`,
		`Entrypoint("/bin/sh", "-c", "cat /app/out.txt")`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("output lacks %s:\n%s", want, src)
		}
	}
	// Build-only: every stage but the last.
	if strings.Count(src, "BuildOnly()") != 3 {
		t.Errorf("want 3 build-only stages:\n%s", src)
	}
	for _, want := range []string{"Dockerfile:16: HEALTHCHECK", "Dockerfile:15: RUN --network", "Dockerfile:19: ADD https://example.com/a.tgz without --checksum", "--chown=app:app", "source pattern *.txt", "Dockerfile:32: STOPSIGNAL", "ENV PATH refers to $PATH"} {
		found := false
		for _, u := range r.Unsupported {
			found = found || strings.Contains(u, want)
		}
		if !found {
			t.Errorf("unsupported list lacks %q: %q", want, r.Unsupported)
		}
		if !strings.Contains(src, want) {
			t.Errorf("the source does not keep %q as a comment", want)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	for _, bad := range []string{"", "RUN true\n", "FROM scratch\nCOPY --from=nope /a /b\nFRM x\n"} {
		if _, err := Convert([]byte(bad), Options{File: "Dockerfile.bad"}); err == nil || !strings.Contains(err.Error(), "Dockerfile.bad") {
			t.Errorf("%q: err = %v, want one naming the file", bad, err)
		}
	}
}
