package dsl_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/ignore"
)

// digestTree writes, under a new folder, a tree with what the hasher
// treats specially: modes, an empty folder, symlinks inside, out of and
// absolute (dangling, so that the digest does not depend on where the
// tree is), a symlinked folder, a .git, a strata store, an OCI layout, and
// store tags that are symlinks (into the folder, out of it, absolute, a
// loop). It returns the folder.
func digestTree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	root := filepath.Join(top, "root")
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"f.txt", "hello\n", 0o644},
		{"bin/tool", "#!/bin/sh\necho hi\n", 0o755},
		{"app.log", "log", 0o600},
		{".git/HEAD", "ref: refs/heads/main\n", 0o644},
		{"store/" + ignore.StoreTag, ignore.StoreTagText, 0o644},
		{"store/data", "x", 0o644},
		{"tag-inside", ignore.StoreTagText, 0o644},
		{"instore/data", "x", 0o644},
		{"fakestore/data", "x", 0o644},
		{"absstore/data", "x", 0o644},
		{"loopstore/data", "x", 0o644},
		{"layout/oci-layout", `{"imageLayoutVersion":"1.0.0"}`, 0o644},
		{"layout/index.json", `{}`, 0o644},
		{"half/oci-layout", `{"imageLayoutVersion":"1.0.0"}`, 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, f.name)
		write(t, p, f.content)
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"link-in":                      "f.txt",
		"link-out":                     "../outside.txt",
		"abs-link":                     "/nonexistent/strata/outside.txt",
		"dirlink":                      "bin",
		"instore/" + ignore.StoreTag:   "../tag-inside",
		"fakestore/" + ignore.StoreTag: "../../tag",
		"absstore/" + ignore.StoreTag:  "/nonexistent/strata/tag",
		"loopstore/" + ignore.StoreTag: ignore.StoreTag,
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"", "bin", ".git", "store", "instore", "fakestore", "absstore", "loopstore", "layout", "half"} {
		if err := os.Chmod(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestDigestsAreStable pins the import and bind digests of digestTree:
// they are in every cache key, so a change to how local sources are read
// or hashed must not change them, or every store would rebuild.
func TestDigestsAreStable(t *testing.T) {
	root := digestTree(t)
	img := dsl.New("x").From(dsl.Scratch()).
		Import(dsl.Dir(root, dsl.Exclude("*.log")), "/a").
		Import(dsl.Dir(root), "/b").
		Import(dsl.File(filepath.Join(root, "f.txt")), "/c").
		Import(dsl.File(filepath.Join(root, "link-in")), "/d").
		Import(dsl.Dir(filepath.Join(root, "dirlink")), "/e").
		Bind(root, "/w", dsl.ReadOnly(), dsl.ContentKey()).
		Bind(root, "/k", dsl.ReadOnly(), dsl.ContentKey("bin", "f.txt", "link-in"))
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := g.Node("x")
	got := map[string]digest.Digest{
		"dir excluding *.log": n.Imports[0],
		"dir":                 n.Imports[1],
		"file":                n.Imports[2],
		"symlinked file":      n.Imports[3],
		"symlinked dir":       n.Imports[4],
		"whole bind":          n.BindDigests[0],
		"bind key paths":      n.BindDigests[1],
	}
	want := map[string]digest.Digest{
		"dir excluding *.log": "sha256:843ce245e0385dc97dde99b321a45e408c766347b01e9dafad54c42d245727d2",
		"dir":                 "sha256:f96c7edfbae7cdb889b330895428e271d9784582097fe20f036cdc8ef1c3bc92",
		"file":                "sha256:ff0a934fa32a91772cadba8777e393b17a617a9ef4b9fc934e1873a3a9676c74",
		"symlinked file":      "sha256:ff0a934fa32a91772cadba8777e393b17a617a9ef4b9fc934e1873a3a9676c74",
		"symlinked dir":       "sha256:38716267b7a5c2fa121bacfcfda0a98551c486e8f8fc6aaea15921c7bd06baf3",
		// A bind is mounted whole: unlike the import, its digest covers
		// .git, the store and the layout inside.
		"whole bind":     "sha256:1b11426df1b6833c85f129b74ee80c9042a93a93eaf67fdd488936e130ed1726",
		"bind key paths": "sha256:44c380677b87cd573761fed797e17145f19d47fc4dcf44a82ef79fe0a05ad4e6",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: digest %s, want %s", k, got[k], w)
		}
	}
}

// TestStoreTagThroughAnAbsoluteSymlink checks that a folder whose store
// tag is an absolute symlink to a real tag is imported: the import reads
// the folder as the sandbox does, which follows no symlink out of it.
func TestStoreTagThroughAnAbsoluteSymlink(t *testing.T) {
	top := t.TempDir()
	write(t, filepath.Join(top, "tag"), ignore.StoreTagText)
	root := filepath.Join(top, "root")
	write(t, filepath.Join(root, "sub/data"), "one")
	if err := os.Symlink(filepath.Join(top, "tag"), filepath.Join(root, "sub", ignore.StoreTag)); err != nil {
		t.Fatal(err)
	}
	before := dirKey(t, dsl.Dir(root))
	write(t, filepath.Join(root, "sub/data"), "two")
	if dirKey(t, dsl.Dir(root)) == before {
		t.Error("a folder whose store tag is an absolute symlink was left out")
	}
}

// TestWholeBindKeyCoversGit checks that a step reading .git through a
// content-keyed bind (git describe, say) is rebuilt when a commit changes
// it, while an import of the same folder, which leaves .git out, is not.
func TestWholeBindKeyCoversGit(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "main.go"), "package main")
	write(t, filepath.Join(dir, ".git/HEAD"), "ref: refs/heads/main\n")
	img := dsl.New("x").From(dsl.Scratch()).
		Import(dsl.Dir(dir), "/src").
		Bind(dir, "/w", dsl.ReadOnly(), dsl.ContentKey()).Run("git describe")
	digests := func() (digest.Digest, digest.Digest) {
		t.Helper()
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := g.Node("x")
		return n.Imports[0], n.BindDigests[0]
	}
	imp, bind := digests()
	write(t, filepath.Join(dir, ".git/HEAD"), "ref: refs/heads/next\n")
	imp2, bind2 := digests()
	if bind2 == bind {
		t.Error("a content-keyed bind's digest left .git out")
	}
	if imp2 != imp {
		t.Error("an import's digest covered .git, which the import does not copy")
	}
}
