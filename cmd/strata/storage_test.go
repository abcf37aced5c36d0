package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage/layer"
)

// build is one strata invocation with its own environment and store.
type build struct {
	t      *testing.T
	dir    string
	store  string
	layout string
	env    []string
}

// driverCache is shared by the storage tests so that each definitions
// package compiles once: drivers are cached by the hash of their inputs,
// so sharing cannot mix them up.
var driverCache = filepath.Join(os.TempDir(), "strata-storage-test-cache")

func newBuild(t *testing.T, pkg string) *build {
	t.Helper()
	needRoot(t)
	tmp := t.TempDir()
	return &build{t: t, dir: pkg, store: filepath.Join(tmp, "store"), layout: filepath.Join(tmp, "oci"),
		env: []string{"XDG_CACHE_HOME=" + driverCache}}
}

// run runs strata with the build's store and layout flags (for commands
// that take them) and extra environment, and returns output and status.
func (b *build) run(env []string, args ...string) (string, int) {
	b.t.Helper()
	full := append([]string(nil), args...)
	switch args[0] {
	case "build", "grab", "clean":
		full = append(full, "--store", b.store, "--layout", b.layout)
	case "inspect":
		full = append(full, "--layout", b.layout)
	}
	return strataEnv(b.t, b.dir, append(append([]string(nil), b.env...), env...), full...)
}

func (b *build) must(env []string, args ...string) string {
	b.t.Helper()
	out, code := b.run(env, args...)
	if code != 0 {
		b.t.Fatalf("strata %s exited %d:\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

var statusLine = regexp.MustCompile(`(?m)^([a-z0-9-]+): (cached.*|built|rebuilt: .*)$`)

// statuses maps each image of a build log to its last word: "cached",
// "built" or "rebuilt: REASON".
func statuses(out string) map[string]string {
	m := map[string]string{}
	for _, s := range statusLine.FindAllStringSubmatch(out, -1) {
		m[s[1]] = s[2]
	}
	return m
}

// expect checks that exactly the images in rebuilt were rebuilt (each for
// a reason containing the given text) and every other one was cached.
func expect(t *testing.T, what, out string, all []string, rebuilt map[string]string) {
	t.Helper()
	st := statuses(out)
	for _, name := range all {
		got := st[name]
		want, ok := rebuilt[name]
		switch {
		case ok && !(strings.HasPrefix(got, "rebuilt: ") && strings.Contains(got, want)):
			t.Errorf("%s: %s: got %q, want rebuilt because %q\n%s", what, name, got, want, out)
		case !ok && !strings.HasPrefix(got, "cached"):
			t.Errorf("%s: %s: got %q, want cached\n%s", what, name, got, out)
		}
	}
}

func TestExactCache(t *testing.T) {
	b := newBuild(t, "testdata/storage/cache")
	in := t.TempDir()
	x := filepath.Join(in, "x")
	if err := os.WriteFile(x, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"STRATA_TEST_INPUT=" + in, "STRATA_TEST_SCRIPT=echo d > /d", "STRATA_PARAM_MSG=hi", "SOURCE_DATE_EPOCH=1700000000"}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		for i, e := range env {
			if strings.HasPrefix(e, k+"=") {
				env[i] = kv
			}
		}
	}
	all := []string{"busybox", "a", "b", "c", "d"}

	out := b.must(env, "build")
	for _, name := range all {
		if st := statuses(out)[name]; st != "built" {
			t.Errorf("first build: %s: %q\n%s", name, st, out)
		}
	}
	checkGC(t, b.layout)

	out = b.must(env, "build")
	expect(t, "unchanged", out, all, map[string]string{})
	if st := statuses(out)["e"]; !strings.Contains(st, "rebuilt: has host binds") {
		t.Errorf("e has a host bind but was %q", st)
	}

	steps := []struct {
		what    string
		change  func()
		rebuilt map[string]string
	}{
		{"imported file content", func() { os.WriteFile(x, []byte("two\n"), 0o644) },
			map[string]string{"b": "imported file " + x + " changed", "c": "base image b changed"}},
		{"imported file mode", func() { os.Chmod(x, 0o600) },
			map[string]string{"b": "imported file " + x + " changed", "c": "base image b changed"}},
		{"build parameter", func() { set("STRATA_PARAM_MSG=bye") },
			map[string]string{"b": "build parameter MSG changed", "c": "base image b changed"}},
		{"run script", func() { set("STRATA_TEST_SCRIPT=echo dd > /d") },
			map[string]string{"d": "run step at"}},
		{"SOURCE_DATE_EPOCH", func() { set("SOURCE_DATE_EPOCH=1700000001") },
			map[string]string{"busybox": "SOURCE_DATE_EPOCH changed", "a": "SOURCE_DATE_EPOCH changed", "b": "SOURCE_DATE_EPOCH changed", "c": "SOURCE_DATE_EPOCH changed", "d": "SOURCE_DATE_EPOCH changed"}},
	}
	for _, s := range steps {
		s.change()
		out := b.must(env, "build")
		expect(t, s.what, out, all, s.rebuilt)
		checkGC(t, b.layout)
	}
	if m, _ := image(t, b.layout, "b"); len(m.Layers) != 3 {
		t.Errorf("b has %d layers, want 3", len(m.Layers))
	}

	// Another layer type encodes the cached layer folders: no step runs.
	out = b.must(env, "build", "--layer-type", "tar", "--layer-type", "squashfs")
	for _, name := range all {
		if st := statuses(out)[name]; st != "cached (encoded as squashfs)" {
			t.Errorf("new layer type: %s: %q\n%s", name, st, out)
		}
	}
	if strings.Contains(strings.ReplaceAll(out, "e | ", ""), " | ") {
		t.Errorf("a step ran for a new layer type:\n%s", out)
	}
	m, _ := image(t, b.layout, "c-squashfs")
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.stacker.image.layer.squashfs+zstd" {
			t.Errorf("c-squashfs has a layer of type %s", l.MediaType)
		}
	}
	out = b.must(env, "build", "--layer-type", "tar", "--layer-type", "squashfs")
	expect(t, "both types again", out, all, map[string]string{})

	// --no-verity wants squashfs blobs without the tree: encoded again,
	// with no step, and the tree comes back the same way.
	for _, noVerity := range []bool{true, false} {
		args := []string{"build", "--layer-type", "tar", "--layer-type", "squashfs"}
		if noVerity {
			args = append(args, "--no-verity")
		}
		out = b.must(env, args...)
		for _, name := range all {
			if st := statuses(out)[name]; st != "cached (encoded as squashfs)" {
				t.Errorf("--no-verity=%t: %s: %q\n%s", noVerity, name, st, out)
			}
		}
		m, _ := image(t, b.layout, "c-squashfs")
		for _, l := range m.Layers {
			if _, ok := verity.RootHash(l.Annotations); ok == noVerity {
				t.Errorf("--no-verity=%t: c-squashfs layer annotations %v", noVerity, l.Annotations)
			}
		}
	}

	out = b.must(env, "build", "--no-cache", "c")
	expect(t, "--no-cache c", out, []string{"busybox", "a", "b", "c"}, map[string]string{"busybox": "--no-cache", "a": "--no-cache", "b": "--no-cache", "c": "--no-cache"})

	// A cache entry whose blob is gone is dropped, not trusted.
	rec := findRecord(t, b.store, "c")
	blob := rec.Layers[0].Descriptor.Digest
	os.Remove(filepath.Join(b.store, "oci", "blobs", "sha256", blob.Encoded()))
	out = b.must(env, "build", "c")
	expect(t, "lost blob", out, []string{"busybox", "a", "b", "c"}, map[string]string{"c": "cache entry dropped: its tar+gzip blob " + blob.String() + " is gone"})
}

type record struct {
	Key    string `json:"key"`
	Image  string `json:"image"`
	Layers []struct {
		Type       string        `json:"type"`
		Descriptor v1.Descriptor `json:"descriptor"`
	} `json:"layers"`
}

// findRecord returns the most recent cache record of the named image.
func findRecord(t *testing.T, store, name string) record {
	t.Helper()
	var rec record
	b, err := os.ReadFile(filepath.Join(store, "cache", "last", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkGC checks that every blob of the layout is referenced by a tag.
func checkGC(t *testing.T, layout string) {
	t.Helper()
	var idx v1.Index
	b, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, d := range idx.Manifests {
		var m v1.Manifest
		readJSON(t, layout, d.Digest.String(), &m)
		used[d.Digest.Encoded()], used[m.Config.Digest.Encoded()] = true, true
		for _, l := range m.Layers {
			used[l.Digest.Encoded()] = true
		}
	}
	entries, _ := os.ReadDir(filepath.Join(layout, "blobs", "sha256"))
	for _, e := range entries {
		if !used[e.Name()] {
			t.Errorf("blob %s of the layout is referenced by no tag", e.Name())
		}
	}
}

func TestLayerTypesAndBases(t *testing.T) {
	b := newBuild(t, "testdata/storage/types")
	out := b.must(nil, "build")
	tags := tagsOf(t, b.layout)
	if want := []string{"both", "both-squashfs", "busybox", "ero", "ero-squashfs", "noop", "sq"}; !slices.Equal(tags, want) {
		t.Errorf("tags = %v, want %v (hidden is build-only)", tags, want)
	}
	if strings.Count(out, "both | ") == 0 || strings.Count(out, "+ echo both") != 1 {
		t.Errorf("both's steps did not run exactly once for two layer types:\n%s", out)
	}
	const sqfs = "application/vnd.stacker.image.layer.squashfs+zstd"
	const erofs = "application/vnd.stacker.image.layer.erofs+lz4"
	for tag, want := range map[string][]string{
		"ero":           {erofs, erofs, erofs},
		"ero-squashfs":  {sqfs, sqfs, sqfs},
		"busybox":       {v1.MediaTypeImageLayerGzip},
		"sq":            {sqfs, sqfs},
		"both":          {v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerGzip},
		"both-squashfs": {sqfs, sqfs, sqfs},
		"noop":          {v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerGzip, v1.MediaTypeImageLayerGzip},
	} {
		m, cfg := image(t, b.layout, tag)
		var got []string
		for _, l := range m.Layers {
			got = append(got, l.MediaType)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: layer types %v, want %v", tag, got, want)
		}
		for _, l := range m.Layers {
			if l.MediaType != v1.MediaTypeImageLayerGzip {
				verityVerify(t, b.layout, l)
			} else if len(l.Annotations) != 0 {
				t.Errorf("%s: a tar layer has annotations %v", tag, l.Annotations)
			}
		}
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			t.Errorf("%s: %d diff ids for %d layers", tag, len(cfg.RootFS.DiffIDs), len(m.Layers))
		}
		if m.Annotations["org.opencontainers.image.title"] != tag && !strings.HasPrefix(tag, m.Annotations["org.opencontainers.image.title"]) {
			t.Errorf("%s: annotations %v", tag, m.Annotations)
		}
		if m.Annotations["dev.strata.version"] == "" {
			t.Errorf("%s: no strata version annotation: %v", tag, m.Annotations)
		}
	}
	// The squashfs blobs are real squashfs images.
	m, _ := image(t, b.layout, "sq")
	top := filepath.Join(b.layout, "blobs", "sha256", m.Layers[1].Digest.Encoded())
	if ls, err := exec.Command("unsquashfs", "-l", top).CombinedOutput(); err != nil || !strings.Contains(string(ls), "squashfs-root/sq") {
		t.Errorf("unsquashfs -l sq's layer: %v\n%s", err, ls)
	}
	// A step that changes nothing adds no layer, only history.
	_, noop := image(t, b.layout, "noop")
	if h := noop.History[len(noop.History)-1]; !h.EmptyLayer {
		t.Errorf("noop's history entry is not empty: %+v", h)
	}
	// Images see their squashfs ancestors' files and whiteouts.
	grabbed := filepath.Join(t.TempDir(), "root")
	b.must(nil, "grab", "both:/", grabbed)
	for _, p := range []string{"sq", "both", "bin/busybox"} {
		if _, err := os.Stat(filepath.Join(grabbed, p)); err != nil {
			t.Errorf("grab both:/ lacks %s: %v", p, err)
		}
	}
	for _, p := range []string{"bin/vi", "etc/sub"} {
		if _, err := os.Lstat(filepath.Join(grabbed, p)); !os.IsNotExist(err) {
			t.Errorf("grab both:/ has %s, which a step removed (%v)", p, err)
		}
	}

	// Images see their erofs ancestors' files and whiteouts too.
	grabbed = filepath.Join(t.TempDir(), "root")
	b.must(nil, "grab", "ero:/", grabbed)
	for _, p := range []string{"sq", "ero", "etc/sub/n", "bin/busybox"} {
		if _, err := os.Stat(filepath.Join(grabbed, p)); err != nil {
			t.Errorf("grab ero:/ lacks %s: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(grabbed, "bin/ls")); !os.IsNotExist(err) {
		t.Errorf("grab ero:/ has bin/ls, which a step removed (%v)", err)
	}

	// Tar, squashfs and erofs images on a squashfs base, then on a tar
	// base, then on an erofs base.
	on := newBuild(t, "testdata/storage/onbase")
	on.store = b.store // layers unpacked once, shared
	env := []string{"STRATA_TEST_BASE_LAYOUT=" + b.layout, "STRATA_TEST_BASE_TAG=sq"}
	out = on.must(env, "build")
	for _, tag := range []string{"ontar", "onsq", "onero"} {
		g := filepath.Join(t.TempDir(), "f")
		on.must(env, "grab", tag+":/"+tag, g)
		if data, _ := os.ReadFile(g); string(data) != "sq\n" {
			t.Errorf("%s on squashfs base: /%s = %q\n%s", tag, tag, data, out)
		}
		if _, err := os.Stat(filepath.Join(on.layout, "blobs")); err != nil {
			t.Fatal(err)
		}
	}
	m, _ = image(t, on.layout, "ontar")
	if len(m.Layers) != 3 || m.Layers[0].MediaType != sqfs || m.Layers[2].MediaType != v1.MediaTypeImageLayerGzip {
		t.Errorf("ontar layers: %+v", m.Layers)
	}
	env[1] = "STRATA_TEST_BASE_TAG=both"
	out = on.must(env, "build")
	for _, name := range []string{"ontar", "onsq", "onero"} {
		if st := statuses(out)[name]; st != "rebuilt: base image digest changed" {
			t.Errorf("%s after its base changed: %q\n%s", name, st, out)
		}
	}
	g := filepath.Join(t.TempDir(), "f")
	on.must(env, "grab", "onsq:/both", g)
	if data, _ := os.ReadFile(g); string(data) != "both\n" {
		t.Errorf("onsq on tar base: /both = %q", data)
	}
	env[1] = "STRATA_TEST_BASE_TAG=ero"
	on.must(env, "build")
	m, _ = image(t, on.layout, "onsq")
	if len(m.Layers) != 4 || m.Layers[0].MediaType != erofs || m.Layers[3].MediaType != sqfs {
		t.Errorf("onsq on the erofs base: layers %+v", m.Layers)
	}
	grabbed = filepath.Join(t.TempDir(), "root")
	on.must(env, "grab", "onsq:/", grabbed)
	for _, p := range []string{"onsq", "ero", "etc/sub/n"} {
		if _, err := os.Stat(filepath.Join(grabbed, p)); err != nil {
			t.Errorf("onsq on the erofs base lacks %s: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(grabbed, "bin/ls")); !os.IsNotExist(err) {
		t.Errorf("onsq on the erofs base has bin/ls, which ero removed (%v)", err)
	}
}

// verityVerify checks a squashfs or erofs layer of a layout with
// veritysetup, from its root hash annotation, as stacker's mount would.
func verityVerify(t *testing.T, layout string, l v1.Descriptor) {
	t.Helper()
	root, ok := verity.RootHash(l.Annotations)
	if !ok {
		t.Errorf("layer %s (%s) has no verity annotation: %v", l.Digest, l.MediaType, l.Annotations)
		return
	}
	blob := filepath.Join(layout, "blobs", "sha256", l.Digest.Encoded())
	f, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, off, err := layer.FSImage(f)
	if err != nil {
		t.Fatalf("layer %s: %v", l.Digest, err)
	}
	out, err := exec.Command("veritysetup", "verify", blob, blob, root, "--hash-offset", strconv.FormatInt(off, 10)).CombinedOutput()
	if err != nil {
		t.Errorf("veritysetup verify layer %s (%s): %v: %s", l.Digest, l.MediaType, err, out)
	}
}

func tagsOf(t *testing.T, layout string) []string {
	t.Helper()
	var idx v1.Index
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, d := range idx.Manifests {
		if d.Annotations[v1.AnnotationRefName] == "" {
			continue // a referrer (an image's SBOM) has no tag
		}
		tags = append(tags, d.Annotations[v1.AnnotationRefName])
	}
	return tags
}

func TestGrab(t *testing.T) {
	b := newBuild(t, "testdata/storage/types")
	b.must(nil, "build", "sq", "hidden")
	dest := t.TempDir()
	// A file of a build-only image, into an existing folder.
	b.must(nil, "grab", "hidden:/hidden", dest)
	if data, _ := os.ReadFile(filepath.Join(dest, "hidden")); string(data) != "secret\n" {
		t.Errorf("hidden:/hidden = %q", data)
	}
	// A symbolic link in the image is followed in the image.
	b.must(nil, "grab", "sq:/bin/sh", filepath.Join(dest, "sh"))
	if fi, err := os.Lstat(filepath.Join(dest, "sh")); err != nil || !fi.Mode().IsRegular() || fi.Size() < 100000 {
		t.Errorf("sq:/bin/sh grabbed as %v, %v; want busybox itself", fi, err)
	}
	// A folder merged from two layers, with a whiteout.
	b.must(nil, "grab", "sq:/bin", filepath.Join(dest, "bin"))
	if _, err := os.Lstat(filepath.Join(dest, "bin", "vi")); !os.IsNotExist(err) {
		t.Errorf("sq:/bin has vi, which sq removed: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "bin", "ls")); err != nil || !strings.Contains(target, "busybox") {
		t.Errorf("sq:/bin/ls = %q, %v", target, err)
	}
	// A tag of the layout that is not a definition's name.
	b.must(nil, "build", "both")
	b.must(nil, "grab", "both-squashfs:/both", filepath.Join(dest, "both"))
	if data, _ := os.ReadFile(filepath.Join(dest, "both")); string(data) != "both\n" {
		t.Errorf("both-squashfs:/both = %q", data)
	}
	out, code := b.run(nil, "grab", "sq:/nope", dest)
	if code == 0 || !strings.Contains(out, `image "sq"`) || !strings.Contains(out, "/nope") {
		t.Errorf("grab of a missing path: exit %d:\n%s", code, out)
	}
}

func TestReproducibleBuilds(t *testing.T) {
	needRoot(t)
	hello := repo(t, "examples/hello")
	var layouts []string
	for range 2 {
		b := newBuild(t, hello)
		b.must([]string{"SOURCE_DATE_EPOCH=1700000000"}, "build", "--layer-type", "tar", "--layer-type", "squashfs", "--layer-type", "zstd")
		layouts = append(layouts, b.layout)
	}
	a, c := snapshot(t, layouts[0]), snapshot(t, layouts[1])
	if len(a) != len(c) || len(a) < 10 {
		t.Fatalf("layouts have %d and %d files", len(a), len(c))
	}
	for k, v := range a {
		if c[k] != v {
			t.Errorf("%s differs between two clean builds", k)
		}
	}
	m, cfg := image(t, layouts[0], "hello")
	want := time.Unix(1700000000, 0).UTC()
	if cfg.Created == nil || !cfg.Created.Equal(want) {
		t.Errorf("created = %v, want %v", cfg.Created, want)
	}
	for _, h := range cfg.History {
		if h.Created == nil || !h.Created.Equal(want) {
			t.Errorf("history entry created %v, want %v", h.Created, want)
		}
	}
	for _, l := range m.Layers {
		var names []string
		for name, h := range layerEntries(t, layouts[0], l) {
			names = append(names, name)
			if h.ModTime.After(want) || h.Uname != "" || h.Gname != "" || h.Uid != 0 || h.Gid != 0 {
				t.Errorf("entry %s: mtime %v, owner %s(%d):%s(%d)", name, h.ModTime, h.Uname, h.Uid, h.Gname, h.Gid)
			}
		}
		order := tarOrder(t, layouts[0], l)
		if !slices.IsSortedFunc(order, func(x, y string) int { return strings.Compare(x, y) }) && !parentsFirst(order) {
			t.Errorf("layer %s entries are not sorted: %v", l.Digest, order)
		}
	}
	if _, ok := m.Annotations["org.opencontainers.image.revision"]; !ok {
		t.Errorf("the definitions are in a git work tree, but the manifest names no revision: %v", m.Annotations)
	}

	// The typed library example too (go-service and debian take minutes).
	var libs []map[string]string
	for range 2 {
		b := newBuild(t, repo(t, "examples/library"))
		b.must([]string{"SOURCE_DATE_EPOCH=1700000000"}, "build")
		libs = append(libs, snapshot(t, b.layout))
	}
	for k, v := range libs[0] {
		if libs[1][k] != v {
			t.Errorf("examples/library: %s differs between two clean builds", k)
		}
	}
}

// tarOrder lists a tar+gzip layer's entry names in stream order.
func tarOrder(t *testing.T, layout string, d v1.Descriptor) []string {
	t.Helper()
	out, err := exec.Command("tar", "-tzf", filepath.Join(layout, "blobs", "sha256", d.Digest.Encoded())).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// parentsFirst reports whether names are in depth-first order with the
// names of each folder sorted, the order strata writes.
func parentsFirst(names []string) bool {
	key := func(s string) string { return strings.ReplaceAll(strings.TrimSuffix(s, "/"), "/", "\x00") }
	return slices.IsSortedFunc(names, func(x, y string) int { return strings.Compare(key(x), key(y)) })
}

func TestDeepChain(t *testing.T) {
	b := newBuild(t, "testdata/storage/deep")
	out := b.must(nil, "build")
	if !strings.Contains(out, "51 built") {
		t.Errorf("deep build:\n%s", out[max(0, len(out)-2000):])
	}
	m, _ := image(t, b.layout, "top")
	if len(m.Layers) != 51 {
		t.Errorf("top has %d layers, want 51", len(m.Layers))
	}
	if tags := tagsOf(t, b.layout); !slices.Equal(tags, []string{"busybox", "top"}) {
		t.Errorf("tags %v: build-only images were tagged", tags)
	}
	root := filepath.Join(t.TempDir(), "root")
	b.must(nil, "grab", "top:/", root)
	for i := 2; i < 50; i++ {
		if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("level%02d", i))); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "level01")); !os.IsNotExist(err) {
		t.Errorf("level01 survived top's rm: %v", err)
	}
	// The chain runs: strata run mounts all 51 layers.
	out = mustStrata(t, ".", "run", "--store", b.store, "--layout", b.layout, "top", "--", "cat", "/level49", "/top")
	if !strings.Contains(out, "49\ntop") {
		t.Errorf("run top: %q", out)
	}
}

func TestStoreLock(t *testing.T) {
	b := newBuild(t, repo(t, "examples/hello"))
	b.must(nil, "build")
	// Hold the store as another build would.
	lock, err := os.OpenFile(filepath.Join(b.store, "lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	lock.Truncate(0)
	fmt.Fprintf(lock, "%d strata build hello\n", os.Getpid())

	out, code := b.run(nil, "build", "--no-wait")
	if code == 0 || !strings.Contains(out, fmt.Sprintf("in use by pid %d (strata build hello)", os.Getpid())) {
		t.Errorf("--no-wait on a held store: exit %d:\n%s", code, out)
	}
	// Another store builds side by side.
	other := newBuild(t, b.dir)
	other.must(nil, "build", "--no-wait")

	// Without --no-wait the build waits, saying for whom, and goes on
	// once the lock is released.
	cmd := exec.Command(strataBin, "build", "--store", b.store, "--layout", b.layout)
	cmd.Dir = b.dir
	cmd.Env = append(os.Environ(), b.env...)
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(buf.String(), "waiting for store"); {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the second build never said it waits:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("waiting message does not name the holder:\n%s", buf.String())
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("waiting build: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "hello: cached") {
		t.Errorf("waiting build:\n%s", buf.String())
	}
}

func TestInspectAndClean(t *testing.T) {
	b := newBuild(t, repo(t, "examples/hello"))
	b.must(nil, "build", "--layer-type", "squashfs")
	out := b.must(nil, "inspect", "hello")
	for _, want := range []string{"application/vnd.stacker.image.layer.squashfs+zstd", "dev.strata.version=", "org.opencontainers.image.title=hello", "entrypoint:", "GREETING=hi", "sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	out = b.must(nil, "clean")
	for _, p := range []string{b.store, b.layout} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("clean left %s (%v):\n%s", p, err, out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
