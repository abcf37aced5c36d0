package dsl_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
)

// A GenerateLabels script is keyed like a step (its labels are kept with
// the layer), survives the definitions document, and an empty one is an
// error at its line.
func TestGenerateLabelsKeyAndWire(t *testing.T) {
	base := dsl.New("base").From(dsl.Scratch()).Run("true")
	key := func(img *dsl.Image) string {
		t.Helper()
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node(img.Name()).Key.String()
	}
	plain := key(base)
	one := key(base.GenerateLabels("echo 1 > /stacker/oci-labels/v"))
	two := key(base.GenerateLabels("echo 2 > /stacker/oci-labels/v"))
	if one == plain || two == one {
		t.Errorf("keys: none %s, script 1 %s, script 2 %s: a labels script must change the key", plain, one, two)
	}
	if key(base.Label("a", "b")) != plain {
		t.Error("a static label changed the key")
	}
	graph := func(img *dsl.Image) *dsl.Graph {
		t.Helper()
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	was := graph(base.GenerateLabels("echo 1 > /stacker/oci-labels/v")).Node("base").KeyInputs
	if why := dsl.Explain(was, graph(base.GenerateLabels("echo 2 > /stacker/oci-labels/v")).Node("base")); why != "GenerateLabels script changed" {
		t.Errorf("a changed labels script is explained as %q", why)
	}

	img := base.GenerateLabels("echo 1 > /stacker/oci-labels/v").GenerateLabels("echo 2 > /stacker/oci-labels/w")
	var buf bytes.Buffer
	if err := dsl.WriteDefinitions(&buf, "example.com/p", []dsl.Target{{Var: "Img", Image: img}}); err != nil {
		t.Fatal(err)
	}
	defs, err := dsl.ReadDefinitions(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got := defs.Targets[0].Image.LabelScripts()
	if len(got) != 2 || got[1].Script != "echo 2 > /stacker/oci-labels/w" || got[0].Pos.Line == 0 {
		t.Errorf("label scripts after the definitions document: %+v", got)
	}

	_, err = dsl.Evaluate(context.Background(), []*dsl.Image{base.GenerateLabels("  ")}, dsl.Options{})
	if err == nil || !strings.Contains(err.Error(), "GenerateLabels: the script is empty") || !strings.Contains(err.Error(), "labels_test.go:") {
		t.Errorf("empty script: %v", err)
	}
}

// Annotations describe one image; volumes and exposed ports are config,
// inherited; none of them changes a cache key.
func TestAnnotationVolumeExpose(t *testing.T) {
	base := dsl.New("base").From(dsl.Scratch()).Run("true").
		Annotation("org.example.team", "platform").Volume("/data", "/data/").Expose("8080", "53/udp")
	child := dsl.New("child").From(base).Run("true").Volume("/cache")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{base, child}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := g.Node("child").Config(ispec.ImageConfig{})
	for _, v := range []string{"/data", "/cache"} {
		if _, ok := cfg.Volumes[v]; !ok || len(cfg.Volumes) != 2 {
			t.Errorf("child's volumes %v lack %s", cfg.Volumes, v)
		}
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok || len(cfg.ExposedPorts) != 2 {
		t.Errorf("child's exposed ports %v", cfg.ExposedPorts)
	}
	if a := g.Node("child").Image.Annotations(); a != nil {
		t.Errorf("child inherited annotations %v", a)
	}
	if a := g.Node("base").Image.Annotations(); a["org.example.team"] != "platform" {
		t.Errorf("base's annotations %v", a)
	}
	plain, err := dsl.Evaluate(context.Background(), []*dsl.Image{dsl.New("base").From(dsl.Scratch()).Run("true")}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Node("base").Key != g.Node("base").Key {
		t.Error("annotations, volumes or ports changed the cache key")
	}
	for _, bad := range []*dsl.Image{base.Volume("data"), base.Expose("http"), base.Expose("70000"), base.Expose("80/icmp"), base.Annotation("", "x")} {
		if _, err := dsl.Evaluate(context.Background(), []*dsl.Image{bad}, dsl.Options{}); err == nil || !strings.Contains(err.Error(), "labels_test.go:") {
			t.Errorf("bad value accepted or not placed: %v", err)
		}
	}
}
