package dsl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
)

func thisLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

var base = dsl.New("base").From(dsl.Scratch()).Run("echo base")

func TestImmutable(t *testing.T) {
	a := base.Run("echo a").Env("A", "1")
	b := base.Run("echo b")
	if got := len(base.Steps()); got != 1 {
		t.Fatalf("base has %d steps after deriving, want 1", got)
	}
	if got := a.Steps()[1].Script; got != "echo a" {
		t.Errorf("a's second step = %q", got)
	}
	if got := b.Steps()[1].Script; got != "echo b" {
		t.Errorf("b's second step = %q (shared backing array?)", got)
	}
	imp := base.Import(dsl.File("/etc/hostname"), "/h", dsl.Owner(1, 1))
	st := imp.Steps()[1].Import
	st.Dest, *st.UID = "/changed", 7
	if again := imp.Steps()[1].Import; again.Dest != "/h" || *again.UID != 1 {
		t.Errorf("changing what Steps returned changed the definition: %s %d", again.Dest, *again.UID)
	}
}

func TestEvaluateOrderAndKeys(t *testing.T) {
	child := dsl.New("child").From(base).Run("echo child")
	other := dsl.New("other").From(base).Run("echo other")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{other, child}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range g.Nodes {
		names = append(names, n.Name)
	}
	if diff := cmp.Diff([]string{"base", "child", "other"}, names); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if g.Node("child").Parent != g.Node("base") {
		t.Error("child's parent is not base")
	}
	if g.Node("child").Key == g.Node("other").Key {
		t.Error("different steps gave the same key")
	}

	// The key is a pure function of the definitions.
	g2, err := dsl.Evaluate(context.Background(), []*dsl.Image{child, other}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Node("child").Key != g2.Node("child").Key {
		t.Error("same definitions, different keys")
	}

	// A changed base changes every key above it.
	base2 := dsl.New("base").From(dsl.Scratch()).Run("echo base v2")
	g3, err := dsl.Evaluate(context.Background(), []*dsl.Image{dsl.New("child").From(base2).Run("echo child")}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g3.Node("child").Key == g.Node("child").Key {
		t.Error("changing the base kept the child's key")
	}
	if got := dsl.Explain(g.Node("child").KeyInputs, g3.Node("child")); got != "base image base changed" {
		t.Errorf("Explain = %q", got)
	}

	// Config-only changes keep the key (no step needs to run again).
	g4, err := dsl.Evaluate(context.Background(), []*dsl.Image{child.Label("a", "b").Entrypoint("/bin/sh")}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g4.Node("child").Key != g.Node("child").Key {
		t.Error("a label changed the cache key")
	}
	// The epoch is part of the key; layer types are not (another encoding
	// of the same layer needs no step to run again).
	for _, c := range []struct {
		opts dsl.Options
		same bool
	}{{dsl.Options{SourceDateEpoch: 1}, false}, {dsl.Options{LayerTypes: []dsl.LayerType{dsl.Squashfs}}, true}} {
		g5, err := dsl.Evaluate(context.Background(), []*dsl.Image{child}, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if same := g5.Node("child").Key == g.Node("child").Key; same != c.same {
			t.Errorf("options %+v: same key = %v, want %v", c.opts, same, c.same)
		}
	}
}

// A layer type made by a conversion rather than by dsl's constants is
// parsed when the graph is made, since the builder trusts the graph's: a
// name --layer-type takes is the type it names, any other is refused.
func TestEvaluateChecksLayerTypes(t *testing.T) {
	img := dsl.New("img").From(dsl.Scratch()).Run("true")
	for _, bad := range []dsl.LayerType{"tar+bzip2", ""} {
		_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{LayerTypes: []dsl.LayerType{dsl.TarGzip, bad}})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("unknown layer type %q", bad)) {
			t.Errorf("layer type %q: err = %v", bad, err)
		}
	}
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{LayerTypes: []dsl.LayerType{"tar", "zstd"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Node("img").LayerTypes; !slices.Equal(got, []dsl.LayerType{dsl.TarGzip, dsl.TarZstd}) {
		t.Errorf("the flag's names tar and zstd became %v", got)
	}
}

func TestImportKeyFollowsContent(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	write := func(s string, mode os.FileMode) {
		if err := os.WriteFile(f, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, mode)
	}
	key := func() digest.Digest {
		img := dsl.New("x").From(dsl.Scratch()).Import(dsl.File(f), "/f")
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node("x").Key
	}
	write("one", 0o644)
	k1 := key()
	os.Chtimes(f, time.Unix(1, 0), time.Unix(1, 0))
	if key() != k1 {
		t.Error("touching the file changed the key")
	}
	write("two", 0o644)
	k2 := key()
	if k2 == k1 {
		t.Error("new content kept the key")
	}
	write("two", 0o755)
	if key() == k2 {
		t.Error("new mode kept the key")
	}
	img := dsl.New("x").From(dsl.Scratch()).Import(dsl.File(f), "/f")
	g, _ := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	write("three", 0o755)
	g2, _ := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
	if got, want := dsl.Explain(g.Node("x").KeyInputs, g2.Node("x")), "imported file "+f+" changed"; got != want {
		t.Errorf("Explain = %q, want %q", got, want)
	}
}

func TestRelativePathsResolveAgainstTheGoFile(t *testing.T) {
	t.Chdir(t.TempDir())
	img := dsl.New("x").From(dsl.Scratch()).Import(dsl.File("testdata/greeting.txt"), "/etc/greeting")
	if _, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{}); err != nil {
		t.Fatalf("relative import from another working directory: %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	src := img.Steps()[0].Import.Source.(*dsl.LocalSource)
	if want := filepath.Join(filepath.Dir(file), "testdata/greeting.txt"); src.Path != want {
		t.Errorf("path = %s, want %s", src.Path, want)
	}
}

func TestErrorsNameTheGoLine(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	file = filepath.Base(file)
	noBase, noBaseLine := dsl.New("nobase").Run("true"), thisLine()
	missing, missingLine := dsl.New("missing").From(dsl.Scratch()).Import(dsl.File("no/such/file"), "/x"), thisLine()
	dup1 := dsl.New("dup").From(dsl.Scratch()).Run("echo 1")
	dup2, dupLine := dsl.New("dup").From(dsl.Scratch()).Run("echo 2"), thisLine()
	relDest, relLine := dsl.New("reldest").From(dsl.Scratch()).Import(dsl.File("testdata/greeting.txt"), "etc/x"), thisLine()
	bad, badLine := dsl.New("Bad Name").From(dsl.Scratch()), thisLine()

	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{noBase, missing, dup1, dup2, relDest, bad}, dsl.Options{})
	var ee *dsl.Error
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *dsl.Error", err)
	}
	msg := err.Error()
	for _, want := range []struct {
		line int
		text string
	}{
		{noBaseLine, `image "nobase" has no base`},
		{missingLine, "no/such/file does not exist"},
		{dupLine, `image name "dup" is used by two different definitions`},
		{relLine, `destination "etc/x" must be an absolute path`},
		{badLine, `image name "Bad Name"`},
	} {
		found := false
		for _, l := range strings.Split(msg, "\n") {
			if strings.Contains(l, want.text) && strings.Contains(l, file+":"+itoa(want.line)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error line with %q at %s:%d in:\n%s", want.text, file, want.line, msg)
		}
	}
}

func TestSameDefinitionTwiceIsNotADuplicate(t *testing.T) {
	mk := func() *dsl.Image { return dsl.New("tool").From(dsl.Scratch()).Run("true") }
	a := dsl.New("a").From(mk()).Run("true")
	b := dsl.New("b").From(mk()).Run("true")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{a, b}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Node("a").Parent != g.Node("b").Parent {
		t.Error("the same definition made twice became two nodes")
	}
}

func TestConfig(t *testing.T) {
	parent := dsl.New("p").From(dsl.Scratch()).Env("A", "1").Entrypoint("/bin/p").Cmd("x").Label("l", "p").WorkDir("/srv")
	child := dsl.New("c").From(parent).Env("B", "2").Env("A", "3").Entrypoint("/bin/c").Label("m", "c").User("1000")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{child}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := g.Node("c").Config(ispec.ImageConfig{Env: []string{"PATH=/bin"}})
	want := ispec.ImageConfig{
		Env:        []string{"PATH=/bin", "A=3", "B=2"},
		Entrypoint: []string{"/bin/c"},
		Labels:     map[string]string{"l": "p", "m": "c"},
		WorkingDir: "/srv",
		User:       "1000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestSelect(t *testing.T) {
	child := dsl.New("child").From(base).Run("true")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{child, dsl.New("lone").From(dsl.Scratch()).Run("true")}, dsl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := g.Select("child")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "base" || nodes[1].Name != "child" {
		t.Errorf("Select(child) = %v", nodes)
	}
	if _, err := g.Select("nope"); err == nil || !strings.Contains(err.Error(), "no image named nope; the images are: base, child, lone") {
		t.Errorf("Select(nope) error = %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParametersAreInTheKeyOfTheirUsersOnly(t *testing.T) {
	user := dsl.New("user").From(dsl.Scratch()).Run("echo ${{V}} ${{W:default}}")
	other := dsl.New("other").From(dsl.Scratch()).Run("echo hi")
	eval := func(params map[string]string) *dsl.Graph {
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{user, other}, dsl.Options{Params: params})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g1, g2 := eval(map[string]string{"V": "1"}), eval(map[string]string{"V": "2"})
	if g1.Node("user").Key == g2.Node("user").Key {
		t.Error("a new parameter value kept the key of the image using it")
	}
	if g1.Node("other").Key != g2.Node("other").Key {
		t.Error("a parameter changed the key of an image that does not use it")
	}
	if got := g2.Node("user").Image.Steps()[0].Script; got != "echo 2 default" {
		t.Errorf("expanded script = %q", got)
	}
	if got := dsl.Explain(g1.Node("user").KeyInputs, g2.Node("user")); got != "build parameter V changed" {
		t.Errorf("Explain = %q", got)
	}
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{user}, dsl.Options{Params: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), `build parameter V is not set`) || !strings.Contains(err.Error(), `image "user"`) {
		t.Errorf("missing parameter error = %v", err)
	}
}

func TestSameNameDifferentConfigIsAnError(t *testing.T) {
	a := dsl.New("app").From(dsl.Scratch()).Run("true").Entrypoint("/a")
	b := dsl.New("app").From(dsl.Scratch()).Run("true").Entrypoint("/b")
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{dsl.New("x").From(a).Run("true"), dsl.New("y").From(b).Run("true")}, dsl.Options{})
	if err == nil || !strings.Contains(err.Error(), `image name "app" is used by two different definitions`) {
		t.Errorf("err = %v", err)
	}
}

func TestSymlinkedImportIsHashedByItsTarget(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	os.WriteFile(target, []byte("one"), 0o644)
	os.Symlink("target", link)
	tdir, ldir := filepath.Join(dir, "tdir"), filepath.Join(dir, "ldir")
	os.Mkdir(tdir, 0o755)
	os.WriteFile(filepath.Join(tdir, "f"), []byte("one"), 0o644)
	os.Symlink("tdir", ldir)
	keys := func() (digest.Digest, digest.Digest) {
		imgs := []*dsl.Image{
			dsl.New("f").From(dsl.Scratch()).Import(dsl.File(link), "/f"),
			dsl.New("d").From(dsl.Scratch()).Import(dsl.Dir(ldir), "/d"),
		}
		g, err := dsl.Evaluate(context.Background(), imgs, dsl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node("f").Key, g.Node("d").Key
	}
	f1, d1 := keys()
	os.WriteFile(target, []byte("two"), 0o644)
	os.WriteFile(filepath.Join(tdir, "f"), []byte("two"), 0o644)
	f2, d2 := keys()
	if f1 == f2 {
		t.Error("changing a symlinked file's target kept the key")
	}
	if d1 == d2 {
		t.Error("changing a file in a symlinked folder kept the key")
	}
}

func TestPlaceholdersInPaths(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "b"), []byte("b"), 0o644)
	builder := dsl.New("builder").From(dsl.Scratch()).Run("true").BuildOnly()
	img := dsl.New("p").From(dsl.Scratch()).
		Import(dsl.File("${{SRC}}"), "/${{DEST}}").
		Import(dsl.FromImage(builder, "/out/${{DEST}}"), "/bin/").
		Bind("${{BIND}}", "/mnt/${{DEST}}")
	eval := func(src string) *dsl.Node {
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{
			"SRC": filepath.Join(dir, src), "DEST": "x", "BIND": dir,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return g.Node("p")
	}
	a, b := eval("a"), eval("b")
	if a.Key == b.Key {
		t.Error("a placeholder in an import path did not change the key")
	}
	steps := a.Image.Steps()
	if s := steps[0].Import.Source.(*dsl.LocalSource); s.Path != filepath.Join(dir, "a") || steps[0].Import.Dest != "/x" {
		t.Errorf("import expanded to %s -> %s", s.Path, steps[0].Import.Dest)
	}
	if s := steps[1].Import.Source.(*dsl.ImageSource); s.Path != "/out/x" {
		t.Errorf("FromImage path expanded to %s", s.Path)
	}
	if bs := a.Image.Binds(); len(bs) != 1 || bs[0].Source != dir || bs[0].Dest != "/mnt/x" {
		t.Errorf("bind expanded to %+v", bs)
	}
	_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{
		"SRC": filepath.Join(dir, "a"), "DEST": "x", "BIND": filepath.Join(dir, "missing"),
	}})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Errorf("expanded bind to a missing folder: %v", err)
	}
}

func TestPlaceholdersInHashesAndBases(t *testing.T) {
	sum := strings.Repeat("AB", 32)
	img := dsl.New("u").From(dsl.Tarball("https://example.invalid/${{T}}.tar", dsl.SHA256("${{TAR_SHA}}"))).
		Import(dsl.URL("https://example.invalid/${{F}}", "${{SHA_X}}"), "/f")
	g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{
		"T": "root", "TAR_SHA": sum, "F": "file", "SHA_X": sum,
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := g.Node("u")
	if want := digest.Digest("sha256:" + strings.ToLower(sum)); n.BaseDigest != want || n.Imports[0] != want {
		t.Errorf("base %s, import %s, want both %s", n.BaseDigest, n.Imports[0], want)
	}
	if tb := n.Base.(*dsl.TarballBase); tb.URL != "https://example.invalid/root.tar" {
		t.Errorf("tarball URL expanded to %q", tb.URL)
	}
	_, err = dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{
		"T": "root", "TAR_SHA": "../../zz", "F": "file", "SHA_X": sum,
	}})
	if err == nil || !strings.Contains(err.Error(), `"../../zz" is not a sha256 digest`) {
		t.Errorf("a tarball hash that is not hex: %v", err)
	}
}

func TestImportDestinations(t *testing.T) {
	img := dsl.New("d").From(dsl.Scratch()).
		Import(dsl.File("/etc/hostname"), "/usr/local/bin/").
		Import(dsl.File("/etc/hosts"), "${{D}}").
		Bind("/etc", "${{B}}")
	eval := func(d, b string) (*dsl.Node, error) {
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{Params: map[string]string{"D": d, "B": b}})
		if err != nil {
			return nil, err
		}
		return g.Node("d"), nil
	}
	n, err := eval("/opt//x/", "/mnt/../mnt/etc")
	if err != nil {
		t.Fatal(err)
	}
	st := n.Image.Steps()
	if st[0].Import.Dest != "/usr/local/bin/" || st[1].Import.Dest != "/opt/x/" {
		t.Errorf("destinations %q and %q, want the final / kept", st[0].Import.Dest, st[1].Import.Dest)
	}
	if b := n.Image.Binds()[0].Dest; b != "/mnt/etc" {
		t.Errorf("bind destination %q", b)
	}
	if _, err := eval("relative", "/mnt"); err == nil || !strings.Contains(err.Error(), `destination "relative" must be an absolute path`) {
		t.Errorf("a relative import destination from a placeholder: %v", err)
	}
	if _, err := eval("/x", "/"); err == nil || !strings.Contains(err.Error(), `image "d": Bind /etc: destination "/"`) {
		t.Errorf("a bind on / from a placeholder: %v", err)
	}
}

// TestLocalTarballPinIsChecked: a pin on a local tarball is validated and
// compared with the file's content when the definition is evaluated, as a
// URL's pin is when it is downloaded.
func TestLocalTarballPinIsChecked(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.tar")
	os.WriteFile(file, []byte("rootfs"), 0o644)
	const sum = "3c47ef972d531d524daa15fa33dd885dd23de6221bbd10a29eb42ecfcf2ef422" // sha256 of "rootfs"
	eval := func(pin string) (*dsl.Node, error) {
		g, err := dsl.Evaluate(context.Background(), []*dsl.Image{dsl.New("t").From(dsl.Tarball(file, dsl.SHA256(pin))).Run("true")}, dsl.Options{})
		if err != nil {
			return nil, err
		}
		return g.Node("t"), nil
	}
	n, err := eval(sum)
	if err != nil {
		t.Fatalf("the right pin: %v", err)
	}
	if n.BaseDigest != "sha256:"+sum {
		t.Errorf("base digest %s, want the pin", n.BaseDigest)
	}
	zeros := strings.Repeat("0", 64)
	_, err = eval(zeros)
	for _, want := range []string{file, "expected sha256:" + zeros, "got sha256:" + sum} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a pin of zeros: error %v, want it to say %q", err, want)
		}
	}
	_, err = eval("xyz")
	if err == nil || !strings.Contains(err.Error(), `"xyz" is not a sha256 digest`) || !strings.Contains(err.Error(), file) {
		t.Errorf("a pin that is not hex: %v", err)
	}
}

// Every path in the image a definition names is checked alike: absolute,
// and without NUL, which would only fail mid-build.
func TestInImagePathsRefuseNUL(t *testing.T) {
	for name, img := range map[string]*dsl.Image{
		"Import":     dsl.New("x").From(dsl.Scratch()).Import(dsl.File("dsl_test.go"), "/a\x00b"),
		"Bind":       dsl.New("x").From(dsl.Scratch()).Bind(".", "/a\x00b", dsl.ReadOnly()),
		"CacheMount": dsl.New("x").From(dsl.Scratch()).CacheMount("c", "/a\x00b"),
		"WorkDir":    dsl.New("x").From(dsl.Scratch()).WorkDir("/a\x00b"),
	} {
		_, err := dsl.Evaluate(context.Background(), []*dsl.Image{img}, dsl.Options{})
		if err == nil || !strings.Contains(err.Error(), "contains NUL") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s with NUL: err = %v", name, err)
		}
	}
}
