package dsl_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/afero"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/dsl/aferofs"
	"github.com/strata-build/strata/internal/ignore"
)

// memFile writes content at path in fsys, with its folders.
func memFile(t *testing.T, fsys afero.Fs, path, content string) {
	t.Helper()
	if err := fsys.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fsys, path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEvaluateInMemory evaluates a definition whose local folder exists
// only in an in-memory file system: its key follows the folder's content,
// not its timestamps, and a missing file is an error naming it and the
// line that imports it.
func TestEvaluateInMemory(t *testing.T) {
	wd, err := os.Getwd() // go test runs in this file's folder, which "app" resolves against
	if err != nil {
		t.Fatal(err)
	}
	fsys := afero.NewMemMapFs()
	app := filepath.Join(wd, "app")
	memFile(t, fsys, filepath.Join(app, "main.go"), "package main")
	memFile(t, fsys, filepath.Join(app, "static/index.html"), "<h1>hi</h1>")
	memFile(t, fsys, filepath.Join(app, "debug.log"), "noise")

	img := dsl.New("app").From(dsl.Scratch()).
		Import(dsl.Dir("app", dsl.Exclude("*.log")), "/srv/app")
	key := func() string {
		t.Helper()
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{FS: aferofs.New(fsys)})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node("app").Key.String()
	}
	before := key()
	if _, err := os.Stat(app); err == nil {
		t.Fatalf("%s exists on disk: the test would not show that evaluation reads the in-memory file system", app)
	}

	// The same content, rewritten and touched: the same key.
	memFile(t, fsys, filepath.Join(app, "main.go"), "package main")
	if err := fsys.Chtimes(filepath.Join(app, "main.go"), time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if key() != before {
		t.Error("rewriting a file with the same content changed the key")
	}
	// An excluded file changes: the same key.
	memFile(t, fsys, filepath.Join(app, "debug.log"), "more noise")
	if key() != before {
		t.Error("changing an excluded file changed the key")
	}
	// Other content: another key.
	memFile(t, fsys, filepath.Join(app, "static/index.html"), "<h1>hello</h1>")
	changed := key()
	if changed == before {
		t.Error("changing a file's content kept the key")
	}
	// A new file: another key again.
	memFile(t, fsys, filepath.Join(app, "static/app.css"), "h1 {}")
	if k := key(); k == changed || k == before {
		t.Error("adding a file kept the key")
	}

	// A file that is not there.
	img, line := dsl.New("config").From(dsl.Scratch()).Import(dsl.File("config.toml"), "/etc/app.toml"), thisLine()
	_, err = dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{FS: aferofs.New(fsys)})
	if err == nil {
		t.Fatal("a missing file was accepted")
	}
	t.Log(err)
	for _, want := range []string{filepath.Join(wd, "config.toml"), "fs_test.go:" + strconv.Itoa(line), "does not exist"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestMemoryAndDiskGiveOneDigest hashes one tree on disk and in memory:
// the digests are equal, so what a test asserts about keys in memory holds
// for the files on disk.
func TestMemoryAndDiskGiveOneDigest(t *testing.T) {
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"main.go", "package main", 0o644},
		{"bin/run", "#!/bin/sh\n", 0o755},
		{"secret", "s", 0o600},
		{"app.log", "log", 0o644},
		{".git/HEAD", "ref: refs/heads/main", 0o644},
		{".strata/" + ignore.StoreTag, ignore.StoreTagText, 0o644},
		{"oci/oci-layout", `{"imageLayoutVersion":"1.0.0"}`, 0o644},
		{"oci/index.json", `{}`, 0o644},
	}
	disk := t.TempDir()
	mem := "/src/app" // another path: import digests do not depend on it
	fsys := afero.NewMemMapFs()
	for _, f := range files {
		p := filepath.Join(disk, f.name)
		write(t, p, f.content)
		memFile(t, fsys, filepath.Join(mem, f.name), f.content)
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Chmod(filepath.Join(mem, f.name), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"", "bin", ".git", ".strata", "oci", "empty"} {
		if err := os.MkdirAll(filepath.Join(disk, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := fsys.MkdirAll(filepath.Join(mem, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(disk, d), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Chmod(filepath.Join(mem, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(fsys fs.FS, dir string) string {
		t.Helper()
		img := dsl.New("x").From(dsl.Scratch()).
			Import(dsl.Dir(dir, dsl.Exclude("*.log")), "/a").
			Import(dsl.File(filepath.Join(dir, "bin/run")), "/b")
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node("x").Imports[0].String() + " " + g.Node("x").Imports[1].String()
	}
	if d, m := digest(nil, disk), digest(aferofs.New(fsys), mem); d != m {
		t.Errorf("digests on disk %s, in memory %s", d, m)
	}
}

// TestEvaluationReadsOnlyOptionsFS evaluates definitions whose local
// sources all exist on disk against an empty file system: each must be
// missing, so none was read from the disk behind the option's back.
func TestEvaluationReadsOnlyOptionsFS(t *testing.T) {
	dir := tree(t, map[string]string{"f": "x", "d/g": "y", "base.tar": "not a tarball", "layout/index.json": `{"manifests":[]}`})
	imgs := []*dsl.Image{
		dsl.New("file").From(dsl.Scratch()).Import(dsl.File(filepath.Join(dir, "f")), "/f"),
		dsl.New("dir").From(dsl.Scratch()).Import(dsl.Dir(filepath.Join(dir, "d")), "/d"),
		dsl.New("tarball").From(dsl.Tarball(filepath.Join(dir, "base.tar"))),
		dsl.New("layout").From(dsl.Layout(filepath.Join(dir, "layout"), "v1")),
		dsl.New("bind").From(dsl.Scratch()).Bind(filepath.Join(dir, "d"), "/d", dsl.ReadOnly(), dsl.ContentKey()).Run("true"),
	}
	// On disk, only the layout fails: it holds no image tagged v1.
	_, err := dsl.Evaluate(context.Background(), imgs, dsl.Options{FS: os.DirFS("/")})
	var derr *dsl.Error
	if !errors.As(err, &derr) || len(derr.Problems) != 1 || !strings.Contains(err.Error(), "no image tagged") {
		t.Fatalf("on disk: %v", err)
	}
	_, err = dsl.Evaluate(context.Background(), imgs, dsl.Options{FS: aferofs.New(afero.NewMemMapFs())})
	if !errors.As(err, &derr) {
		t.Fatalf("in an empty file system: %v", err)
	}
	if len(derr.Problems) != len(imgs) {
		t.Errorf("in an empty file system: %d problems, want one per image:\n%v", len(derr.Problems), err)
	}
	t.Log(err)
	for _, p := range derr.Problems {
		if !errors.Is(p, os.ErrNotExist) && !strings.Contains(p.Error(), "does not exist") {
			t.Errorf("problem %q is not a missing file", p)
		}
	}
}

// TestSymlinkWithoutReadlink checks the limit Options.FS documents: a
// file system that reports a symlink but cannot read it fails evaluation
// with afero.ErrNoReadlink.
func TestSymlinkWithoutReadlink(t *testing.T) {
	dir := tree(t, map[string]string{"d/f": "x"})
	if err := os.Symlink("f", filepath.Join(dir, "d/link")); err != nil {
		t.Fatal(err)
	}
	img := dsl.New("x").From(dsl.Scratch()).Import(dsl.Dir(filepath.Join(dir, "d")), "/d")
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{FS: aferofs.New(lstatOnly{afero.NewOsFs()})})
	t.Log(err)
	if !errors.Is(err, afero.ErrNoReadlink) {
		t.Errorf("error %v, want afero.ErrNoReadlink", err)
	}
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "d/link")) {
		t.Errorf("error %v does not name the symlink", err)
	}
}

// lstatOnly is a file system that sees symlinks but cannot read them.
type lstatOnly struct{ afero.Fs }

func (l lstatOnly) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	return l.Fs.(afero.Lstater).LstatIfPossible(name)
}

// TestDigestsThroughAnotherFs checks that symlinks are resolved through
// the file system's own Lstat and Readlink: digestTree's key, read
// through os.DirFS and through an afero wrapper around the disk, is the
// one read from the disk directly.
func TestDigestsThroughAnotherFs(t *testing.T) {
	root := digestTree(t)
	img := dsl.New("x").From(dsl.Scratch()).
		Import(dsl.Dir(root), "/b").
		Import(dsl.File(filepath.Join(root, "link-in")), "/d").
		Import(dsl.Dir(filepath.Join(root, "dirlink")), "/e")
	keys := map[string]string{}
	for name, fsys := range map[string]fs.FS{
		"default":   nil,
		"os.DirFS":  os.DirFS("/"),
		"read-only": aferofs.New(afero.NewReadOnlyFs(afero.NewOsFs())),
	} {
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = g.Node("x").Key.String()
	}
	if keys["default"] != keys["read-only"] || keys["default"] != keys["os.DirFS"] {
		t.Errorf("keys through the disk %s, os.DirFS %s and an afero read-only wrapper %s", keys["default"], keys["os.DirFS"], keys["read-only"])
	}
}

// fakeDigests answers every question with the same made-up digest and
// records what evaluation told it.
type fakeDigests struct {
	answer     digest.Digest
	remembered map[string]digest.Digest
}

func (f *fakeDigests) Digest(path string, info fs.FileInfo) (digest.Digest, bool) {
	return f.answer, f.answer != ""
}

func (f *fakeDigests) Remember(path string, info fs.FileInfo, d digest.Digest) {
	f.remembered[path] = d
}

// A tarball base's digest comes from Options.Digests when it knows the
// file, and what evaluation reads itself is told to it.
func TestTarballDigestsAreRemembered(t *testing.T) {
	dir := tree(t, map[string]string{"base.tar": "the tarball"})
	path := filepath.Join(dir, "base.tar")
	imgs := []*dsl.Image{dsl.New("on-tarball").From(dsl.Tarball(path)).Run("true")}
	base := func(known dsl.FileDigests) digest.Digest {
		g, err := dsl.Evaluate(context.Background(), imgs, dsl.Options{Digests: known})
		if err != nil {
			t.Fatal(err)
		}
		return g.Nodes[0].BaseDigest
	}
	miss := &fakeDigests{remembered: map[string]digest.Digest{}}
	if got, want := base(miss), digest.FromString("the tarball"); got != want || miss.remembered[path] != want {
		t.Errorf("on a miss: base digest %s, remembered %v; want %s", got, miss.remembered, want)
	}
	hit := &fakeDigests{answer: digest.FromString("remembered"), remembered: map[string]digest.Digest{}}
	if got := base(hit); got != hit.answer || len(hit.remembered) != 0 {
		t.Errorf("on a hit: base digest %s, remembered %v; want %s and nothing", got, hit.remembered, hit.answer)
	}
}
