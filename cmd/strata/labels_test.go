package main_test

import (
	"strings"
	"testing"
)

// TestGenerateLabels builds images whose labels their GenerateLabels
// scripts compute from the rootfs: the labels reach the config (and the
// images built on them), the scripts' files do not reach the layer, a
// cached build keeps the labels without running the scripts, and a changed
// script runs again.
func TestGenerateLabels(t *testing.T) {
	b := newBuild(t, "testdata/labels")
	out := b.must(nil, "build", "versioned", "child", "nosteps")
	if !strings.Contains(out, "versioned: generated labels flavour, org.opencontainers.image.version") {
		t.Errorf("the build does not name the generated labels:\n%s", out)
	}
	want := map[string]map[string]string{
		"versioned": {"org.opencontainers.image.version": "1.2.3", "flavour": "plain", "org.example.static": "yes"},
		"child":     {"org.opencontainers.image.version": "1.2.3", "flavour": "plain", "org.example.static": "yes"},
		"nosteps":   {"org.opencontainers.image.version": "1.2.3", "only": "only"},
	}
	check := func(what string, want map[string]map[string]string) {
		t.Helper()
		for name, labels := range want {
			_, cfg := image(t, b.layout, name)
			for k, v := range labels {
				if got := cfg.Config.Labels[k]; got != v {
					t.Errorf("%s: %s label %s = %q, want %q (all: %v)", what, name, k, got, v, cfg.Config.Labels)
				}
			}
		}
	}
	check("first build", want)
	// Annotations are the image's own; volumes and ports are inherited.
	if m, _ := image(t, b.layout, "versioned"); m.Annotations["org.example.team"] != "platform" {
		t.Errorf("versioned's manifest annotations: %v", m.Annotations)
	}
	m, cfg := image(t, b.layout, "child")
	if _, ok := m.Annotations["org.example.team"]; ok {
		t.Errorf("child inherited a manifest annotation: %v", m.Annotations)
	}
	if _, ok := cfg.Config.Volumes["/data"]; !ok {
		t.Errorf("child's volumes: %v", cfg.Config.Volumes)
	}
	if _, ok := cfg.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("child's exposed ports: %v", cfg.Config.ExposedPorts)
	}
	m, _ = image(t, b.layout, "versioned")
	entries := layerEntries(t, b.layout, m.Layers[len(m.Layers)-1])
	if entries["opt/app/VERSION"] == nil {
		t.Error("versioned's layer lacks its step's file")
	}
	for name := range entries {
		if strings.HasPrefix(name, "stacker") || name == "made-by-labels" {
			t.Errorf("versioned's layer holds %s, which only its labels script wrote", name)
		}
	}

	// Cached: the labels come from the store, no script runs.
	out = b.must(nil, "build", "versioned", "child", "nosteps")
	if strings.Contains(out, "generated labels") || strings.Contains(out, "building") {
		t.Errorf("a cached build ran a labels script:\n%s", out)
	}
	check("cached build", want)

	// A changed script is a changed key.
	out = b.must([]string{"STRATA_PARAM_LABEL_FLAVOUR=spicy"}, "build", "versioned", "child")
	if st := statuses(out)["versioned"]; !strings.HasPrefix(st, "rebuilt") {
		t.Errorf("versioned after its labels script changed: %q\n%s", st, out)
	}
	want["versioned"]["flavour"], want["child"]["flavour"] = "spicy", "spicy"
	delete(want, "nosteps")
	check("changed script", want)

	// Mistakes name the image and the script.
	out, code := b.run(nil, "build", "badlabel")
	if code == 0 || !strings.Contains(out, "/stacker/oci-labels/notafile is not a regular file") || !strings.Contains(out, "images.go:") {
		t.Errorf("a folder in the labels folder: exit %d\n%s", code, out)
	}
	out, code = b.run(nil, "build", "faillabel")
	if code == 0 || !strings.Contains(out, "GenerateLabels") || !strings.Contains(out, "about to fail") {
		t.Errorf("a failing labels script: exit %d\n%s", code, out)
	}
}
