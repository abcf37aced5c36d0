package sandbox_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-build/strata/runtime/sandbox"
)

// The finisher of TestSecrets: it runs in the child while the run's stage
// still exists and reports every file under the given folders that holds
// the needle.
func init() {
	sandbox.RegisterFinisher("test-grep", func(ctx context.Context, upper string, raw json.RawMessage) (json.RawMessage, error) {
		var arg struct {
			Dirs   []string
			Needle string
		}
		if err := json.Unmarshal(raw, &arg); err != nil {
			return nil, err
		}
		// The needle comes hex-encoded: the arg itself is in the spec file.
		needle, err := hex.DecodeString(arg.Needle)
		if err != nil {
			return nil, err
		}
		found, err := grepTree(arg.Dirs, string(needle))
		if err != nil {
			return nil, err
		}
		return json.Marshal(found)
	})
}

// grepTree lists the regular files under dirs that contain needle, and
// counts the files it looked at (the stage must have been searched).
func grepTree(dirs []string, needle string) (map[string]any, error) {
	var hits []string
	files := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			files++
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte(needle)) {
				hits = append(hits, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{"hits": hits, "files": files}, nil
}

const secretValue = "s3cr3t-value-4b9e1c"

func TestSecrets(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	// The stage (spec, scripts, skeleton) goes under TMPDIR: put it where
	// the finisher searches.
	tmp := filepath.Join(e.dir, "tmp")
	os.Mkdir(tmp, 0o755)
	t.Setenv("TMPDIR", tmp)
	spec := e.spec(script(`
cat /run/secrets/token; echo
stat -c 'mode=%a uid=%u' /run/secrets/token
echo fs=$(awk '$2=="/run/secrets"{print $3, substr($4,1,2)}' /proc/mounts)
echo x > /run/secrets/token 2>/dev/null || echo write=refused
touch /run/secrets/new 2>/dev/null || echo create=refused
`))
	spec.Secrets = []sandbox.Secret{{Name: "token", Value: []byte(secretValue)}, {Name: "other", Value: []byte("o")}}
	arg, _ := json.Marshal(map[string]any{"Dirs": []string{e.dir}, "Needle": hex.EncodeToString([]byte(secretValue))})
	spec.Finish = &sandbox.FinishSpec{Name: "test-grep", Arg: arg}
	out, errOut, res, err := run(t, spec)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	want := secretValue + "\nmode=400 uid=0\nfs=tmpfs ro\nwrite=refused\ncreate=refused\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	var during struct {
		Hits  []string
		Files int
	}
	if err := json.Unmarshal(res, &during); err != nil {
		t.Fatal(err)
	}
	if len(during.Hits) > 0 || during.Files < 2 {
		t.Errorf("during the run, the secret is in %v (%d files searched)", during.Hits, during.Files)
	}
	after, err := grepTree([]string{e.dir}, secretValue)
	if err != nil {
		t.Fatal(err)
	}
	if hits := after["hits"].([]string); len(hits) > 0 {
		t.Errorf("after the run, the secret is in %v", hits)
	}
	// The mount point came from the skeleton and the data from a tmpfs.
	assertUpper(t, e.upper, nil)

	spec.Finish = nil
	spec.Secrets = []sandbox.Secret{{Name: "../x", Value: []byte("v")}}
	if _, _, _, err := run(t, spec); err == nil || !strings.Contains(err.Error(), `secret name "../x"`) {
		t.Errorf("bad secret name: err = %v", err)
	}
}

func TestImportsReadableDuringSteps(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	file := filepath.Join(e.dir, "tool.sh")
	os.WriteFile(file, []byte("echo tool ran\n"), 0o644)
	dir := filepath.Join(e.dir, "assets")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "a"), []byte("asset"), 0o644)
	out, _ := mustRun(t, e.spec(
		script(`
sh /.strata/imports/tool.sh
cat /.strata/imports/assets/sub/a; echo
touch /.strata/imports/assets/new 2>/dev/null || echo ro=yes
`),
		sandbox.Step{Copy: &sandbox.Copy{Source: file, Dest: "/usr/bin/tool.sh"}, Where: "i.go:1"},
		sandbox.Step{Copy: &sandbox.Copy{Source: dir, Dest: "/srv/assets"}, Where: "i.go:2"},
	))
	if out != "tool ran\nasset\nro=yes\n" {
		t.Errorf("stdout %q", out)
	}
	// Only the copies are in the layer, nothing of /.strata.
	assertUpper(t, e.upper, []string{"usr", "usr/bin", "usr/bin/tool.sh", "srv", "srv/assets", "srv/assets/sub", "srv/assets/sub/a"})
}
