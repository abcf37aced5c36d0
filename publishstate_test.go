package strata

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/storage"
)

// Tagging for publish never builds, even an image the store does not hold
// (the store changed since publish planned: a strata clean in between).
func TestTagBuiltNeverBuilds(t *testing.T) {
	tmp := t.TempDir()
	opts := Options{Store: filepath.Join(tmp, "store"), Layout: filepath.Join(tmp, "oci"), Out: &strings.Builder{}}
	img := dsl.New("never").From(dsl.Scratch()).Run("#!/bin/sh\nexit 0\n")
	g, err := Evaluate(context.Background(), opts, img)
	if err != nil {
		t.Fatal(err)
	}
	err = tagBuilt(context.Background(), opts, g.Nodes)
	if err == nil || !strings.Contains(err.Error(), "nothing is built here") {
		t.Fatalf("tagBuilt of an image the store lacks: %v, want a refusal", err)
	}
	st, err := storage.Open(context.Background(), opts.Store, storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if rec, _, err := st.Lookup(g.Node("never").Key); err != nil || rec != nil {
		t.Errorf("the store holds a record of the image after tagBuilt: %v, %v", rec, err)
	}
}
