package main_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

var goCache = sync.OnceValue(func() string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
})

// engineEnv gives a test its own driver cache (so the first strata call
// compiles) but keeps the machine's Go build cache, which a fresh
// XDG_CACHE_HOME would otherwise make cold. It returns the temp folder
// and the --store and --layout flags pointing into it.
func engineEnv(t *testing.T) (tmp string, flags []string) {
	t.Helper()
	tmp = t.TempDir()
	if c := goCache(); c != "" {
		t.Setenv("GOCACHE", c)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(tmp, "cache"))
	return tmp, []string{"--store", filepath.Join(tmp, "store"), "--layout", filepath.Join(tmp, "oci")}
}

func args(first []string, rest ...string) []string {
	return append(append([]string(nil), first...), rest...)
}

// layerFile returns the content of the regular file name in a tar+gzip
// layer, and whether it is there.
func layerFile(t *testing.T, layout string, d v1.Descriptor, name string) (string, bool) {
	t.Helper()
	f, err := os.Open(filepath.Join(layout, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b), true
		}
	}
}

// topFile reads name from the top layer of the image tagged tag.
func topFile(t *testing.T, layout, tag, name string) string {
	t.Helper()
	m, _ := image(t, layout, tag)
	s, ok := layerFile(t, layout, m.Layers[len(m.Layers)-1], name)
	if !ok {
		t.Fatalf("%s's layer has no %s", tag, name)
	}
	return strings.TrimSpace(s)
}

// interval reads the start and end seconds an image's step wrote.
func interval(t *testing.T, layout, tag string) (start, end float64) {
	t.Helper()
	var err error
	if start, err = strconv.ParseFloat(topFile(t, layout, tag, "start"), 64); err != nil {
		t.Fatal(err)
	}
	if end, err = strconv.ParseFloat(topFile(t, layout, tag, "end"), 64); err != nil {
		t.Fatal(err)
	}
	return start, end
}

// Two images that need nothing of each other run at the same time with
// --jobs 2 (their steps' intervals overlap) and one after the other with
// --jobs 1.
func TestIndependentImagesRunConcurrently(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	layout := filepath.Join(tmp, "oci")
	out := mustStrata(t, "testdata/engine/parallel", args([]string{"build", "--jobs", "2"}, flags...)...)
	ls, le := interval(t, layout, "left")
	rs, re := interval(t, layout, "right")
	if !(ls < re && rs < le) {
		t.Errorf("with --jobs 2 the steps did not overlap: left %.2f-%.2f, right %.2f-%.2f\n%s", ls, le, rs, re, out)
	}

	out = mustStrata(t, "testdata/engine/parallel", args([]string{"build", "--jobs", "1", "--no-cache"}, flags...)...)
	ls, le = interval(t, layout, "left")
	rs, re = interval(t, layout, "right")
	if ls < re && rs < le {
		t.Errorf("with --jobs 1 the steps overlapped: left %.2f-%.2f, right %.2f-%.2f\n%s", ls, le, rs, re, out)
	}
	noMountsUnder(t, tmp)
}

// A failing image leaves the images that do not need it built, skips the
// ones that do, and the summary names each with its outcome.
func TestFailureLeavesOthersBuilt(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	layout := filepath.Join(tmp, "oci")
	out, code := strata(t, "testdata/engine/failure", args([]string{"build", "fine", "bad", "afterbad"}, flags...)...)
	if code != 7 {
		t.Errorf("exit code %d, want the failed step's 7:\n%s", code, out)
	}
	for _, want := range []string{
		"bad | about to fail",
		"--- last lines of bad:",
		`FAILED bad: image "bad": step 1 (`,
		"images.go:14) failed: exit status 7",
		"SKIPPED afterbad: needs bad, which failed",
		"2 built, 1 failed, 1 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^fine\s+built\s`).MatchString(out) {
		t.Errorf("the summary does not say fine was built:\n%s", out)
	}
	if got := topFile(t, layout, "fine", "fine"); got != "fine" {
		t.Errorf("fine's /fine = %q", got)
	}
	if strings.Contains(out, "afterbad | ") {
		t.Errorf("afterbad ran:\n%s", out)
	}
	noMountsUnder(t, tmp)
}

// --fail-fast stops a long step of an unrelated image when another fails.
func TestFailFastCancelsOthers(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	out, code := strata(t, "testdata/engine/failure", args([]string{"build", "bad", "slow", "--fail-fast", "--jobs", "2"}, flags...)...)
	if code == 0 || code == 130 {
		t.Fatalf("exit status %d, want the failed step's:\n%s", code, out)
	}
	if !strings.Contains(out, "FAILED bad:") || strings.Contains(out, "FAILED slow:") {
		t.Errorf("the summary should name bad as failed and only bad:\n%s", out)
	}
	if !strings.Contains(out, "SKIPPED slow: stopped by --fail-fast") {
		t.Errorf("slow was not reported as stopped by --fail-fast:\n%s", out)
	}
	if strings.Contains(out, "slow: built") {
		t.Errorf("slow finished despite --fail-fast:\n%s", out)
	}
	noMountsUnder(t, tmp)
	if entries, _ := os.ReadDir(filepath.Join(tmp, "store", "tmp")); len(entries) != 0 {
		t.Errorf("store tmp/ keeps %d entries after the cancelled build", len(entries))
	}
}

// A cache mount keeps its content across builds, is shared by images that
// take turns using it, and none of it lands in an image.
func TestCacheMount(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	layout := filepath.Join(tmp, "oci")
	mustStrata(t, "testdata/engine/cachemount", args([]string{"build", "--jobs", "2"}, flags...)...)
	out := mustStrata(t, "testdata/engine/cachemount", args([]string{"build", "--jobs", "2", "--no-cache"}, flags...)...)

	cache := filepath.Join(tmp, "store", "caches", "shared")
	b, err := os.ReadFile(filepath.Join(cache, "log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 8 {
		t.Fatalf("the cache's log has %d lines, want 8 (two builds of two images, two lines each):\n%s\n%s", len(lines), b, out)
	}
	// The lock makes each image's start and end adjacent.
	for i := 0; i < len(lines); i += 2 {
		name, _, _ := strings.Cut(lines[i], " ")
		if lines[i] != name+" start" || lines[i+1] != name+" end" {
			t.Errorf("steps used the cache at the same time:\n%s", b)
			break
		}
	}
	for _, img := range []string{"cachea", "cacheb"} {
		if _, err := os.Stat(filepath.Join(cache, "from-"+img)); err != nil {
			t.Errorf("cache lacks what %s wrote: %v", img, err)
		}
		m, _ := image(t, layout, img)
		top := layerEntries(t, layout, m.Layers[len(m.Layers)-1])
		if top[img] == nil {
			t.Errorf("%s's layer lacks /%s; it has %v", img, img, keys(top))
		}
		for name := range top {
			if strings.HasPrefix(name, "var/cache/shared") {
				t.Errorf("%s's layer holds %s, from the cache mount", img, name)
			}
		}
	}
	noMountsUnder(t, tmp)
}

// A secret reaches the steps, and its value is in no blob of the output
// layout, no file of the store and no line of the output; a missing
// secret fails the build before any work, naming it.
func TestSecrets(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	layout, store := filepath.Join(tmp, "oci"), filepath.Join(tmp, "store")
	dir := "testdata/engine/secrets"
	fileSecret := "file-secret-7c1e55d2a9b04f3e"

	t.Setenv("STRATA_TEST_TOKEN", "")
	os.Unsetenv("STRATA_TEST_TOKEN")
	out, code := strata(t, dir, args([]string{"build"}, flags...)...)
	if code == 0 {
		t.Fatalf("the build succeeded without its secret:\n%s", out)
	}
	for _, want := range []string{`image "secretive": secret "token" (`, "images.go:", "environment variable STRATA_TEST_TOKEN is not set"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "building") {
		t.Errorf("work started before the missing secret was found:\n%s", out)
	}

	raw := make([]byte, 12)
	rand.Read(raw)
	token := "tok-" + hex.EncodeToString(raw)
	t.Setenv("STRATA_TEST_TOKEN", token)
	out = mustStrata(t, dir, args([]string{"build"}, flags...)...)
	for name, value := range map[string]string{"token.sha": token, "key.sha": fileSecret + "\n"} {
		sum := sha256.Sum256([]byte(value))
		if got := topFile(t, layout, "secretive", name); got != hex.EncodeToString(sum[:]) {
			t.Errorf("/%s = %q: the step did not read the secret", name, got)
		}
	}
	if !strings.Contains(out, "secretive | token is ***") {
		t.Errorf("the printed secret is not masked:\n%s", out)
	}
	m, _ := image(t, layout, "secretive")
	if entries := layerEntries(t, layout, m.Layers[len(m.Layers)-1]); entries["run/secrets/token"] != nil || entries["run/secrets"] != nil {
		t.Errorf("the layer holds /run/secrets: %v", keys(entries))
	}
	for _, secret := range []string{token, fileSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("the output shows the secret %q:\n%s", secret, out)
		}
		for _, root := range []string{layout, store} {
			if where := findInFiles(t, root, secret); where != "" {
				t.Errorf("the secret %q is in %s", secret, where)
			}
		}
	}
	noMountsUnder(t, tmp)
}

// findInFiles returns the first file under root whose content, or whose
// gzip-decompressed content, holds s.
func findInFiles(t *testing.T, root, s string) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = p
			return nil
		}
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil && bytes.Contains(plain, []byte(s)) {
				found = p + " (gzip)"
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// strata graph and strata build --dry-run say what is cached and what
// would run, and why, before and after a build.
func TestGraphAndDryRun(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	hello := repo(t, "examples/hello")
	storeFlag := flags[:2]

	out := mustStrata(t, hello, args([]string{"graph"}, storeFlag...)...)
	for _, want := range []string{"IMAGE", "busybox", "scratch", "build: not built before"} {
		if !strings.Contains(out, want) {
			t.Errorf("graph lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^hello\s+busybox\s+-\s+build: not built before`).MatchString(out) {
		t.Errorf("graph does not show hello on busybox, to build:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "store")); !os.IsNotExist(err) {
		t.Errorf("strata graph created the store: %v", err)
	}

	out = mustStrata(t, hello, args([]string{"build", "--dry-run"}, flags...)...)
	if !regexp.MustCompile(`(?s)dry run: 2 to build, 0 to encode, 0 cached\n1\.\s+busybox\s+build: not built before\n2\.\s+hello\s+build: not built before`).MatchString(out) {
		t.Errorf("dry run before the build:\n%s", out)
	}
	if strings.Contains(out, " | ") {
		t.Errorf("the dry run ran a step:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(tmp, "oci")); !os.IsNotExist(err) {
		t.Errorf("the dry run wrote the layout: %v", err)
	}

	mustStrata(t, hello, args([]string{"build"}, flags...)...)
	out = mustStrata(t, hello, args([]string{"build", "--dry-run", "--layer-type", "tar+gzip", "--layer-type", "squashfs"}, flags...)...)
	// The layer type is not in the key: the cached layers are encoded.
	if !regexp.MustCompile(`(?s)dry run: 0 to build, 2 to encode, 0 cached\n1\.\s+busybox\s+cached, encode as squashfs\n2\.\s+hello\s+cached, encode as squashfs`).MatchString(out) {
		t.Errorf("dry run with another layer type:\n%s", out)
	}
	out = mustStrata(t, hello, args([]string{"build", "--dry-run"}, flags...)...)
	if !regexp.MustCompile(`(?s)dry run: 0 to build, 0 to encode, 2 cached\n1\.\s+busybox\s+cached\n2\.\s+hello\s+cached`).MatchString(out) {
		t.Errorf("dry run after the build:\n%s", out)
	}
	out = mustStrata(t, hello, args([]string{"graph", "--dot"}, storeFlag...)...)
	for _, want := range []string{"digraph strata {", `"hello" -> "busybox";`, `"busybox" -> "scratch";`, "fillcolor=palegreen"} {
		if !strings.Contains(out, want) {
			t.Errorf("graph --dot lacks %q:\n%s", want, out)
		}
	}
	out = mustStrata(t, hello, args([]string{"graph", "--no-cache", "hello"}, storeFlag...)...)
	if !regexp.MustCompile(`(?m)^hello\s+busybox\s+-\s+build: --no-cache`).MatchString(out) {
		t.Errorf("graph --no-cache hello:\n%s", out)
	}
}

// tempModule makes, the way a user does, a definitions module that
// imports a local package, and returns its folder.
func tempModule(t *testing.T) string {
	t.Helper()
	return userModule(t, "example.com/defs", map[string]string{
		"images.go": `package defs

import (
	"example.com/defs/steps"
	"github.com/strata-build/strata/dsl"
)

// Img is built from scratch.
var Img = dsl.New("img").From(dsl.Scratch()).Run(steps.Script)
`,
		"steps/steps.go": "// Package steps is a local package the definitions import.\npackage steps\n\n// Script is the step.\nconst Script = \"#!/bin/busybox sh\\necho one\\n\"\n",
	})
}

const compiledLine = "strata: compiled definitions"

// An unchanged definitions package, even with newer timestamps, is not
// compiled again; a change in a local package it imports is.
func TestDriverRecompilesOnlyOnChange(t *testing.T) {
	engineEnv(t)
	dir := tempModule(t)
	out := mustStrata(t, dir, "list")
	if !strings.Contains(out, compiledLine) || !strings.Contains(out, "img") {
		t.Fatalf("first list did not compile:\n%s", out)
	}
	out = mustStrata(t, dir, "list")
	if strings.Contains(out, compiledLine) {
		t.Errorf("second list compiled again:\n%s", out)
	}
	future := time.Now().Add(time.Hour)
	for _, f := range []string{"images.go", "steps/steps.go", "go.mod"} {
		if err := os.Chtimes(filepath.Join(dir, f), future, future); err != nil {
			t.Fatal(err)
		}
	}
	out = mustStrata(t, dir, "list")
	if strings.Contains(out, compiledLine) {
		t.Errorf("list compiled after a touch that changed no content:\n%s", out)
	}
	p := filepath.Join(dir, "steps", "steps.go")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte("echo one"), []byte("echo two"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustStrata(t, dir, "list")
	if !strings.Contains(out, compiledLine) {
		t.Errorf("list did not compile after the imported package changed:\n%s", out)
	}
}

// Definitions that do not compile print the compiler's messages, each
// with its file:line, and nothing else.
func TestCompileErrorIsOnlyTheCompilers(t *testing.T) {
	engineEnv(t)
	dir := tempModule(t)
	bad := "package defs\n\nimport \"github.com/strata-build/strata/dsl\"\n\n// Broken is not an image.\nvar Broken *dsl.Image = dsl.New(42)\n"
	if err := os.WriteFile(filepath.Join(dir, "broken.go"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := strata(t, dir, "build")
	if code == 0 {
		t.Fatalf("build of broken definitions succeeded:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	pos := regexp.MustCompile(`^(\./)?broken\.go:6:\d+: `)
	if len(lines) == 0 || !pos.MatchString(lines[0]) {
		t.Errorf("output does not start with the compiler's broken.go:6 message:\n%s", out)
	}
	for _, l := range lines {
		if !regexp.MustCompile(`^\S+\.go:\d+:\d+: `).MatchString(l) && !strings.HasPrefix(l, "\t") {
			t.Errorf("output has a line that is not the compiler's: %q\n%s", l, out)
		}
	}
}

// A mage target builds with the flags given in STRATA_FLAGS.
func TestMageTakesStrataFlags(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	t.Setenv("MAGEFILE_CACHE", filepath.Join(tmp, "mage"))
	t.Setenv("STRATA_FLAGS", strings.Join(args(flags, "--jobs", "1", "--dry-run"), " "))
	mage := exec.Command("go", "run", "github.com/magefile/mage", "-d", repo(t, "examples/hello"), "-w", repo(t, "examples/hello"), "build")
	b, err := mage.CombinedOutput()
	if err != nil {
		t.Fatalf("mage build: %v\n%s", err, b)
	}
	if !regexp.MustCompile(`dry run: 2 to build, 0 to encode, 0 cached`).Match(b) {
		t.Errorf("mage build did not take --dry-run from STRATA_FLAGS:\n%s", b)
	}
	t.Setenv("STRATA_FLAGS", strings.Join(args(flags, "--jobs", "1"), " "))
	b, err = exec.Command("go", "run", "github.com/magefile/mage", "-d", repo(t, "examples/hello"), "-w", repo(t, "examples/hello"), "build").CombinedOutput()
	if err != nil {
		t.Fatalf("mage build: %v\n%s", err, b)
	}
	if _, cfg := image(t, filepath.Join(tmp, "oci"), "hello"); !contains(cfg.Config.Env, "GREETING=hi") {
		t.Errorf("mage build did not build hello into the --layout of STRATA_FLAGS:\n%s", b)
	}
}

// A mage target publishes with strata.Publish: it builds what is missing
// first, then publishes; the second time it builds nothing.
func TestMagePublishes(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	t.Setenv("MAGEFILE_CACHE", filepath.Join(tmp, "mage"))
	t.Setenv("STRATA_FLAGS", strings.Join(flags, " "))
	published := filepath.Join(tmp, "published")
	t.Setenv("PUBLISH_TO", "oci:"+published)
	mage := func() string {
		t.Helper()
		b, err := exec.Command("go", "run", "github.com/magefile/mage", "-d", repo(t, "examples/hello"), "-w", repo(t, "examples/hello"), "publish").CombinedOutput()
		if err != nil {
			t.Fatalf("mage publish: %v\n%s", err, b)
		}
		return string(b)
	}
	out := mage()
	if !strings.Contains(out, "2 built") || !strings.Contains(out, "published hello:latest") {
		t.Errorf("first mage publish did not build and publish:\n%s", out)
	}
	if _, cfg := image(t, published, "hello:latest"); !contains(cfg.Config.Env, "GREETING=hi") {
		t.Errorf("published hello lacks its config:\n%s", out)
	}
	if um, err := exec.Command("umoci", "ls", "--layout", published).CombinedOutput(); err != nil || !strings.Contains(string(um), "hello:latest") {
		t.Errorf("umoci ls %s: %v\n%s", published, err, um)
	}
	if out := mage(); !strings.Contains(out, "2 cached") || strings.Contains(out, "built") {
		t.Errorf("second mage publish built again:\n%s", out)
	}
}

// Ctrl-C stops every running step and leaves no mount and no half-written
// state behind; the exit status says the build was interrupted.
func TestInterruptCancelsCleanly(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	cmd := exec.Command(strataBin, args([]string{"build", "fine", "slow", "--jobs", "2"}, flags...)...)
	cmd.Dir = "testdata/engine/failure"
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	started, readDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		once := sync.Once{}
		for {
			n, err := pr.Read(buf)
			out.Write(buf[:n])
			if bytes.Contains(out.Bytes(), []byte("slow | + sleep 60")) {
				once.Do(func() { close(started) })
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		pw.Close()
		<-readDone
		t.Fatalf("slow's step never started:\n%s", out.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	pw.Close()
	<-readDone
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 130 {
		t.Errorf("exit code %d after Ctrl-C, want 130:\n%s", code, out.String())
	}
	if strings.Contains(out.String(), "slow: built") {
		t.Errorf("slow finished despite Ctrl-C:\n%s", out.String())
	}
	noMountsUnder(t, tmp)
	if entries, _ := os.ReadDir(filepath.Join(tmp, "store", "tmp")); len(entries) != 0 {
		t.Errorf("store tmp/ keeps %d entries after Ctrl-C", len(entries))
	}
}

// An image's steps run while the image below it is still being encoded:
// the encoder (a mksquashfs that waits for the upper image's step to
// leave its mark before it encodes anything) would wait forever if the
// encode were on the build's critical path.
func TestStepsRunWhileBaseEncodes(t *testing.T) {
	needRoot(t)
	tmp, flags := engineEnv(t)
	real, err := exec.LookPath("mksquashfs")
	if err != nil {
		t.Skip("needs mksquashfs (go run mage.go deps)")
	}
	signal, bin := filepath.Join(tmp, "signal"), filepath.Join(tmp, "bin")
	for _, d := range []string{signal, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wrapper := "#!/bin/sh\n" +
		"i=0\n" +
		"while [ ! -e " + signal + "/child-ran ]; do\n" +
		"  i=$((i+1)); if [ $i -gt 600 ]; then echo 'no step ran while this layer was encoded' >&2; exit 1; fi\n" +
		"  sleep 0.1\n" +
		"done\n" +
		"exec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "mksquashfs"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("STRATA_TEST_SIGNAL", signal)
	out := mustStrata(t, "testdata/engine/offpath", args([]string{"build", "--layer-type", "squashfs", "--squashfs-writer", "mksquashfs"}, flags...)...)
	for _, name := range []string{"busybox", "parent", "child"} {
		if !regexp.MustCompile(`(?m)^` + name + ` +built `).MatchString(out) {
			t.Errorf("the summary does not say %s was built:\n%s", name, out)
		}
	}
	layout := filepath.Join(tmp, "oci")
	m, _ := image(t, layout, "child")
	if len(m.Layers) != 3 || m.Layers[2].MediaType != "application/vnd.stacker.image.layer.squashfs+zstd" {
		t.Errorf("child's manifest does not list three squashfs layers: %+v", m.Layers)
	}
	noMountsUnder(t, tmp)
}
