package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime/sandbox"
)

// labelsMax bounds one generated label's value: labels travel in the image
// config, which every runtime reads whole.
const labelsMax = 64 << 10

// generateLabels runs n's GenerateLabels scripts in a throw-away workspace
// over n's rootfs (upper, the folder its steps wrote, "" when they made
// none, on lowers) and returns the labels they wrote into dsl.LabelsDir,
// a host folder bound there, so that nothing they do reaches the layer.
func (b *builder) generateLabels(ctx context.Context, n *dsl.Node, upper string, lowers []string) (map[string]string, error) {
	scripts := n.Image.LabelScripts()
	if len(scripts) == 0 {
		return nil, nil
	}
	ws, err := b.store.NewWorkspace(n.Name + "-labels")
	if err != nil {
		return nil, err
	}
	defer b.discard(ctx, ws)
	if upper != "" {
		lowers = append([]string{upper}, lowers...)
	}
	spec, err := b.stepSpec(ctx, n, lowers, ws)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(ws.Dir, "labels")
	// Writable by the container's root, whichever host id it maps to.
	if err := os.Mkdir(out, 0o777); err != nil {
		return nil, err
	}
	if err := os.Chmod(out, 0o777); err != nil {
		return nil, err
	}
	spec.Binds = append(spec.Binds, sandbox.Bind{Source: out, Dest: dsl.LabelsDir})
	for _, s := range scripts {
		spec.Steps = append(spec.Steps, sandbox.Step{Where: s.Pos.String() + ", GenerateLabels", Script: s.Script})
	}
	w := newPrefixWriter(b.con, n.Name, 20)
	stepOut := b.stepOutput(n, w)
	spec.Stdout, spec.Stderr = stepOut, stepOut
	_, err = sandbox.Run(ctx, spec)
	w.Flush()
	if err != nil {
		var se *sandbox.StepError
		if errors.As(err, &se) {
			return nil, b.stepFailure(n, se, w)
		}
		return nil, fmt.Errorf("image %q: GenerateLabels: %w", n.Name, err)
	}
	labels, err := readLabels(out)
	if err != nil {
		return nil, fmt.Errorf("image %q: GenerateLabels (%s): %w", n.Name, scripts[0].Pos, err)
	}
	if len(labels) > 0 {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.con.printf("%s: generated labels %s\n", n.Name, strings.Join(keys, ", "))
	}
	return labels, nil
}

// readLabels reads the files of dir as labels: name = key, content less
// one trailing newline = value. Anything but a regular file is refused,
// so that a script's mistake (a folder, a link) is not silently dropped.
func readLabels(dir string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%s/%s is not a regular file: each label is one file", dsl.LabelsDir, e.Name())
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		if fi.Size() > labelsMax {
			return nil, fmt.Errorf("%s/%s holds %d bytes: a label's value is at most %d", dsl.LabelsDir, e.Name(), fi.Size(), labelsMax)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		labels[e.Name()] = strings.TrimSuffix(string(b), "\n")
	}
	return labels, nil
}
