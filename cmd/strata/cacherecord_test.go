package main_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestForeignCacheRecordIsRebuilt: a cache record that is valid JSON but
// not one strata wrote (empty, or another tool's) is garbage: the next
// build rebuilds the image and says why, instead of failing every build
// until --no-cache or clean.
func TestForeignCacheRecordIsRebuilt(t *testing.T) {
	b := newBuild(t, "testdata/storage/cache")
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "x"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"STRATA_TEST_INPUT=" + in, "STRATA_TEST_SCRIPT=true", "STRATA_PARAM_MSG=hi"}
	all := []string{"busybox", "a", "b", "c"}
	b.must(env, "build", "c")

	corrupt := map[string]string{"a": `{}`, "b": `{"version":1,"cache":"lolnope"}`}
	for name, content := range corrupt {
		rec := findRecord(t, b.store, name)
		file := filepath.Join(b.store, "cache", rec.Key[len("sha256:"):]+".json")
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := b.must(env, "build", "c")
	const why = `cache entry dropped: its record is not one strata wrote (key "" is not a digest)`
	expect(t, "foreign records", out, all, map[string]string{"a": why, "b": why})

	out = b.must(env, "build", "c")
	expect(t, "after the rebuild", out, all, map[string]string{})
}
