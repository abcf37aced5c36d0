package fetch_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/testuser"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/layer"
)

// hostileArchives are archives whose entries try to reach outside the
// rootfs after passing the tarball scan (which refuses "../" and absolute
// names itself: TestTarballRefusesEscapes), keyed by what they try.
func hostileArchives(victim string) map[string][]entry {
	file := filepath.Join(victim, "file")
	return map[string][]entry{
		"symlink then write (absolute)": {{name: "evil", typ: '2', link: victim}, {name: "evil/pwned", body: "pwned"}},
		"symlink then write (relative)": {{name: "rel", typ: '2', link: strings.Repeat("../", 20) + strings.TrimPrefix(victim, "/")}, {name: "rel/pwned", body: "pwned"}},
		"symlink then overwrite":        {{name: "f", typ: '2', link: file}, {name: "f", body: "overwritten"}},
		"symlinked parent then dir":     {{name: "d", typ: '2', link: victim}, {name: "d/sub/", typ: '5'}, {name: "d/sub/x", body: "x"}},
		"hardlink through symlink":      {{name: "s", typ: '2', link: victim}, {name: "h", typ: '1', link: "s/file"}},
		"device nodes":                  {{name: "dev/", typ: '5'}, {name: "dev/sda", typ: '4', mode: 0o666, major: 8, minor: 0}, {name: "dev/mem", typ: '3', mode: 0o666, major: 1, minor: 1}},
	}
}

// registryOnly are entries a tarball base's scan refuses; the unpack of a
// registry layer refuses them by the same check (layer.CheckEntry,
// TestOneUnpackPolicy), and must in any case write nothing outside the
// layer folder.
func registryOnly(victim string) map[string][]entry {
	return map[string][]entry{
		"dotdot name":   {{name: "../../../../../../../../" + strings.TrimPrefix(victim, "/") + "/dotdot", body: "pwned"}},
		"absolute name": {{name: filepath.Join(victim, "absolute"), body: "pwned"}},
		"hardlink out":  {{name: "hl", typ: '1', link: filepath.Join(victim, "file")}},
	}
}

// checkHostile unpacks every hostile archive as a tarball base and as a
// registry layer into a store under base, then checks that nothing outside
// the store changed and, rootless, that no device node was created.
func checkHostile(t *testing.T, base string) {
	rootless := os.Geteuid() != 0
	victim := filepath.Join(base, "victim")
	if err := os.MkdirAll(victim, 0o777); err != nil {
		t.Fatal(err)
	}
	// World-writable, so an escape would succeed if anything allowed it.
	os.Chmod(victim, 0o777)
	os.WriteFile(filepath.Join(victim, "file"), []byte("original"), 0o666)
	os.Chmod(filepath.Join(victim, "file"), 0o666)
	before := tree(t, base, "store")
	st := openStore(t, filepath.Join(base, "store"))
	opts := layer.UnpackOptions{Rootless: rootless, UserXattr: rootless}
	ctx := context.Background()

	reg := newRegistry(t)
	unpack := func(name string, desc v1.Descriptor) {
		dir, err := st.Unpacked(ctx, desc, opts)
		if err != nil {
			t.Logf("%s: refused: %v", name, err)
			return
		}
		if strings.HasPrefix(name, "tarball/device") && !rootless {
			if fi, err := os.Lstat(filepath.Join(dir, "dev/sda")); err != nil || fi.Mode()&fs.ModeDevice == 0 {
				t.Errorf("%s: as root the block device should be unpacked (inside the store): %v", name, err)
			}
		}
	}
	for name, entries := range hostileArchives(victim) {
		raw := makeTar(t, entries)
		blob := gzipped(t, raw)
		file := filepath.Join(base, "in.tar.gz")
		os.WriteFile(file, blob, 0o644)
		d := digest.FromBytes(blob)
		if err := fetch.IngestFile(ctx, st, file, d); err != nil {
			t.Fatal(err)
		}
		img, err := fetch.TarballImage(ctx, st, file, d)
		if err != nil {
			t.Errorf("tarball %s: scan refused an archive it should leave to the unpacker: %v", name, err)
			continue
		}
		unpack("tarball/"+name, img.Manifest.Layers[0])
	}
	all := hostileArchives(victim)
	for k, v := range registryOnly(victim) {
		all[k] = v
	}
	n := 0
	for name, entries := range all {
		n++
		ref := reg.host() + "/hostile:" + strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "(", "")
		ref = strings.ReplaceAll(ref, ")", "")
		pushed := push(t, ref, imageOf(t, makeTar(t, entries)))
		img, err := fetch.Pull(ctx, st, ref, pushed, insecure)
		if err != nil {
			t.Fatalf("pull %s: %v", name, err)
		}
		unpack("registry/"+name, img.Manifest.Layers[0])
	}

	after := tree(t, base, "store")
	for p, v := range after {
		if before[p] != v {
			t.Errorf("outside the store, %s is now %q (was %q)", p, v, before[p])
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("outside the store, %s is gone", p)
		}
	}
	if rootless {
		filepath.WalkDir(st.Root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeDevice == 0 {
				return nil
			}
			var s syscall.Stat_t
			if syscall.Lstat(p, &s) == nil && s.Rdev != 0 {
				t.Errorf("an unprivileged unpack created the device node %s", p)
			}
			return nil
		})
	}
}

// tree maps every path under dir (but skip) to its type and content.
func tree(t *testing.T, dir, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "in.tar.gz" {
			return nil
		}
		if rel == skip {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel] = "dir"
		default:
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

func TestHostile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the privileged half; TestHostileRootless covers unprivileged unpacks")
	}
	checkHostile(t, t.TempDir())
}

const hostileInnerEnv = "STRATA_HOSTILE_INNER"

// TestHostileRootless runs checkHostile as an unprivileged user: directly
// when the test already runs as one, otherwise by running this test
// binary again as the user stratatest (created when missing).
func TestHostileRootless(t *testing.T) {
	if os.Geteuid() != 0 {
		base := os.Getenv(hostileInnerEnv)
		if base == "" {
			base = t.TempDir()
		}
		checkHostile(t, base)
		return
	}
	const user = "stratatest"
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip("needs runuser to run as an unprivileged user")
	}
	testuser.Ensure(t, user, false)
	dir, err := os.MkdirTemp("", "strata-hostile-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	bin := filepath.Join(dir, "fetch.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "w")
	os.Mkdir(work, 0o755)
	if out, err := exec.Command("chown", user+":", work).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	cmd := exec.Command("runuser", "-u", user, "--", bin, "-test.run", "^TestHostileRootless$", "-test.v", "-test.count=1")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), hostileInnerEnv+"="+work, "HOME="+work)
	out, err := cmd.CombinedOutput()
	t.Logf("as %s:\n%s", user, out)
	if err != nil {
		t.Fatalf("unprivileged run: %v", err)
	}
}
