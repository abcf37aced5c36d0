package dsl

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Explain compares the key inputs of an earlier build of the same image
// (Node.KeyInputs as recorded then) with n's and says, for people, why the
// keys differ: "imported file greeting.txt changed", "run step at
// hello.go:14 changed", "base image busybox was rebuilt".
func Explain(previous []byte, n *Node) string {
	var old, cur keyDoc
	if len(previous) == 0 || json.Unmarshal(previous, &old) != nil {
		return "not built before"
	}
	if err := json.Unmarshal(n.KeyInputs, &cur); err != nil {
		return "definition changed"
	}
	var why []string
	if old.Version != cur.Version {
		why = append(why, "cache format changed")
	}
	if old.Parent != cur.Parent {
		switch {
		case n.Parent != nil:
			why = append(why, fmt.Sprintf("base image %s changed", n.Parent.Name))
		case strings.HasPrefix(cur.Parent, "layout:"):
			why = append(why, "base image digest changed")
		default:
			why = append(why, "base changed")
		}
	}
	if old.Epoch != cur.Epoch {
		why = append(why, "SOURCE_DATE_EPOCH changed")
	}
	if !slices.Equal(old.Env, cur.Env) || !slices.Equal(old.BuildEnv, cur.BuildEnv) {
		why = append(why, "environment changed")
	}
	if old.WorkDir != cur.WorkDir {
		why = append(why, "working directory changed")
	}
	if !slices.Equal(old.Binds, cur.Binds) {
		why = append(why, "binds changed")
	}
	if !slices.Equal(old.LabelScripts, cur.LabelScripts) {
		why = append(why, "GenerateLabels script changed")
	}
	var params []string
	for k, v := range cur.Params {
		if ov, ok := old.Params[k]; !ok || ov != v {
			params = append(params, k)
		}
	}
	for k := range old.Params {
		if _, ok := cur.Params[k]; !ok {
			params = append(params, k)
		}
	}
	sort.Strings(params)
	for _, k := range params {
		why = append(why, fmt.Sprintf("build parameter %s changed", k))
	}
	steps := n.Image.steps
	for i := range max(len(old.Steps), len(cur.Steps)) {
		if len(params) > 0 {
			// The steps differ because the parameters do.
			break
		}
		if i >= len(old.Steps) || i >= len(cur.Steps) {
			why = append(why, fmt.Sprintf("steps added or removed (now %d, was %d)", len(cur.Steps), len(old.Steps)))
			break
		}
		o, c := old.Steps[i], cur.Steps[i]
		pos := steps[i].Pos.String()
		switch {
		case c.Run != "" && o.Run != c.Run:
			why = append(why, fmt.Sprintf("run step at %s changed", pos))
		case c.Import != nil && o.Import == nil:
			why = append(why, fmt.Sprintf("step at %s changed", pos))
		case c.Import != nil && o.Import.Digest != c.Import.Digest:
			why = append(why, fmt.Sprintf("imported %s changed", steps[i].Import.Source.describe()))
		case c.Import != nil && !equalJSON(o.Import, c.Import):
			why = append(why, fmt.Sprintf("import at %s changed", pos))
		}
	}
	if len(why) == 0 {
		return "definition changed"
	}
	return strings.Join(why, "; ")
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
