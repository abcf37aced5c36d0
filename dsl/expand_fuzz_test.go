package dsl_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-build/strata/dsl"
)

// modelExpand is an independent statement of what a ${{KEY}} or
// ${{KEY:default}} placeholder means, written as a scanner rather than the
// regular expression dsl uses, so that the two can disagree: KEY is a
// letter or _ then letters, digits and _; a default runs to the first "}";
// a set key takes its value, an unset one its default, and an unset one
// without default is left as written and reported missing. Values are not
// expanded again.
func modelExpand(s string, params map[string]string) (out string, used map[string]string, missing []string) {
	used = map[string]string{}
	var b strings.Builder
	for i := 0; i < len(s); {
		name, def, hasDef, n := placeholderAt(s[i:])
		if n == 0 {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch v, ok := params[name]; {
		case ok:
			used[name] = v
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			missing = append(missing, name)
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), used, missing
}

// placeholderAt parses a placeholder at the start of s and returns its
// length, 0 when s does not start with one.
func placeholderAt(s string) (name, def string, hasDef bool, n int) {
	if !strings.HasPrefix(s, "${{") {
		return "", "", false, 0
	}
	i := 3
	for i < len(s) && (s[i] == '_' || 'A' <= s[i] && s[i] <= 'Z' || 'a' <= s[i] && s[i] <= 'z' || i > 3 && '0' <= s[i] && s[i] <= '9') {
		i++
	}
	if i == 3 {
		return "", "", false, 0
	}
	name = s[3:i]
	if i < len(s) && s[i] == ':' {
		end := strings.IndexByte(s[i+1:], '}')
		if end < 0 {
			return "", "", false, 0
		}
		def, hasDef = s[i+1:i+1+end], true
		i += 1 + end
	}
	if !strings.HasPrefix(s[i:], "}}") {
		return "", "", false, 0
	}
	return name, def, hasDef, i + 2
}

// FuzzExpand evaluates an image whose Run script and Env value hold the
// fuzzed string, with one fuzzed build parameter, and checks the result
// against modelExpand: a string without placeholders is kept as written,
// only the parameters a placeholder named are recorded as used, and an
// unset parameter without default fails evaluation naming the parameter
// and the Go line of the definition.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"echo plain",
		"echo ${{VERSION}}",
		"echo ${{VERSION:1.0}} ${{OTHER:}}",
		"${{A}}${{A}}${{B:x}}",
		"$${{{VERSION}}}",
		"${{VERSION:}}}",
		"${{ VERSION }} ${{9X}} ${{X-Y}}",
		"${{VERSION:a:b}} ${{VERSION:${{X}}}}",
		"${{", "}}", "${{}}", "${{VERSION",
		"apt-get install -y ${{PKGS:curl ca-certificates}}\n",
		"\x00${{\xff}}",
	} {
		f.Add(s, "VERSION", "2.0")
	}
	f.Add("${{K}}", "K", "${{K}}")
	f.Add("${{K}}}}", "K", "${{L")
	f.Add("x", "", "")
	f.Fuzz(func(t *testing.T, s, key, value string) {
		params := map[string]string{key: value}
		img := dsl.New("fuzz").From(dsl.Scratch()).Env("E", s)
		if strings.TrimSpace(s) != "" {
			img = img.Run(s)
		}
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: params})
		want, used, missing := modelExpand(s, params)
		if len(missing) > 0 {
			if err == nil {
				t.Fatalf("%q with %v evaluated although %v are not set", s, params, missing)
			}
			for _, k := range missing {
				if !strings.Contains(err.Error(), "build parameter "+k+" is not set") || !strings.Contains(err.Error(), "expand_fuzz_test.go:") {
					t.Fatalf("missing parameter %s: the error does not name it and the Go line: %v", k, err)
				}
			}
			return
		}
		if err != nil {
			t.Fatalf("%q with %v: %v", s, params, err)
		}
		n := g.Node("fuzz")
		if !strings.Contains(s, "${{") && want != s {
			t.Fatalf("the model changed %q without placeholders", s)
		}
		if env := n.StepEnv(nil); len(env) != 1 || env[0] != "E="+want {
			t.Fatalf("Env %q with %v: got %q, want %q", s, params, env, "E="+want)
		}
		if steps := n.Image.Steps(); strings.TrimSpace(s) != "" && (len(steps) != 1 || steps[0].Script != want) {
			t.Fatalf("Run %q with %v: got %q, want %q", s, params, steps[0].Script, want)
		}
		if len(n.Params) != len(used) {
			t.Fatalf("%q with %v: used %v, want %v", s, params, n.Params, used)
		}
		for k, v := range used {
			if got, ok := n.Params[k]; !ok || got != v {
				t.Fatalf("%q with %v: used %v, want %v", s, params, n.Params, used)
			}
		}
	})
}
