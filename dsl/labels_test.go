package dsl_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
