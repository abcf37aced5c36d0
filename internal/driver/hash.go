package driver

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"hash"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// generatorVersion changes whenever the scan rule, the generated main or
// the rule of which documents may be reused (reuse.go) changes, so that
// entries made by an older strata are not reused.
// The generated main is a function of the hashed inputs plus this, which is
// why the hit path need not scan or generate anything.
const generatorVersion = "strata-driver/3"

// buildEnv lists the environment variables that change what the go command
// builds. GOOS and GOARCH are not here: the driver is always built for the
// host, whatever they say.
var buildEnv = []string{
	"GOFLAGS", "CGO_ENABLED", "GOEXPERIMENT", "GOWORK", "GOROOT", "GOTOOLCHAIN", "GOENV",
	"GOAMD64", "GOARM", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64", "GOWASM",
	"CC", "CXX", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS", "PKG_CONFIG",
}

// goTool identifies the go command without running it: a new toolchain
// installed at the same path changes its size or modification time.
type goTool struct {
	Path string
	Size int64
	Mod  int64
}

// findGo resolves the go command: name (default "go") in PATH, then
// $GOROOT/bin.
func findGo(name string) (goTool, error) {
	if name == "" {
		name = "go"
	}
	p, err := exec.LookPath(name)
	if err != nil && name == "go" {
		if root := os.Getenv("GOROOT"); root != "" {
			p, err = exec.LookPath(filepath.Join(root, "bin", "go"))
		}
	}
	if err != nil {
		return goTool{}, fmt.Errorf("finding the go command (needed to compile the definitions): %w", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return goTool{}, fmt.Errorf("finding the go command: %w", err)
	}
	return goTool{Path: p, Size: fi.Size(), Mod: fi.ModTime().UnixNano()}, nil
}

// keyPrefix is everything of the key but the files' contents: what a
// run can learn without reading a file, and so what the stamps of the
// input files (inputs.go) are valid for.
func keyPrefix(ws *workspace, pkgDir string, tool goTool, strataImport string) []byte {
	var b bytes.Buffer
	field := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	field(generatorVersion)
	field(strataImport)
	field(runtime.GOOS)
	field(runtime.GOARCH)
	field(tool.Path)
	field(strconv.FormatInt(tool.Size, 10))
	field(strconv.FormatInt(tool.Mod, 10))
	for _, k := range buildEnv {
		v, ok := os.LookupEnv(k)
		field(k)
		field(strconv.FormatBool(ok) + v)
	}
	field(goEnvFile())
	field(pkgDir)
	// The module files found, and so which modules are local, depend on
	// what exists above the folder (a go.work created in a parent).
	for _, f := range ws.Files {
		field(f)
	}
	return b.Bytes()
}

// inputKey returns the cache key of the driver for the package in pkgDir.
// It reads files and parses import blocks only; see the package doc for
// what it covers. rec, when not nil, is told of every file and folder
// read, before it is read.
func inputKey(ws *workspace, pkgDir string, tool goTool, strataImport string, rec *recorder) (string, error) {
	h := sha256.New()
	h.Write(keyPrefix(ws, pkgDir, tool, strataImport))
	// Settings made with `go env -w` live in this file rather than the
	// environment.
	if f := goEnvFile(); f != "" {
		if err := hashFile(h, f, rec); err != nil {
			return "", err
		}
	}
	for _, f := range ws.Files {
		if err := hashFile(h, f, rec); err != nil {
			return "", err
		}
	}
	roots := []string{pkgDir}
	// The generated main imports strata's dsl package: when strata is a
	// local module (its own examples, or a replace directive), a change to
	// dsl must rebuild the driver too. Only dsl: the driver links nothing
	// else of strata, so an edit of the runtime or the CLI leaves drivers
	// valid.
	if d, ok := ws.localDir(path.Join(strataImport, "dsl")); ok {
		roots = append(roots, d)
	}
	if err := hashPackages(h, ws, rec, roots...); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goEnvFile is where `go env -w` writes, as the go command computes it.
func goEnvFile() string {
	if f, ok := os.LookupEnv("GOENV"); ok {
		if f == "off" {
			return ""
		}
		return f
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "go", "env")
}

func writeLen(h hash.Hash, n int) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

// hashFile hashes a file's name and content; a missing file is hashed as
// missing, so creating it changes the key.
func hashFile(h hash.Hash, name string, rec *recorder) error {
	rec.note(name)
	data, err := os.ReadFile(name)
	h.Write([]byte(name))
	h.Write([]byte{0})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.Write([]byte("missing\x00"))
		return nil
	case err != nil:
		return fmt.Errorf("hashing %s: %w", name, err)
	}
	writeLen(h, len(data))
	h.Write(data)
	return nil
}

// hashPackages hashes the package in dir and every package of a local
// module that it imports, transitively. Import paths come from the import
// blocks of all non-test Go files but those no build can select
// (constraints.go): hashing a package the build does not use costs a
// little time, missing one would serve a stale binary.
func hashPackages(h hash.Hash, ws *workspace, rec *recorder, dirs ...string) error {
	fset := token.NewFileSet()
	anyTags := tagsMayBeSet()
	seen := map[string]bool{}
	var queue []string
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			queue = append(queue, d)
		}
	}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		imports, err := hashPackageDir(h, fset, dir, anyTags, rec)
		if err != nil {
			return err
		}
		for _, imp := range imports {
			// Only local modules need hashing: go.sum pins the rest.
			d, ok := ws.localDir(imp)
			if !ok || seen[d] {
				continue
			}
			seen[d] = true
			queue = append(queue, d)
		}
	}
	return nil
}

// hashPackageDir hashes the files of one package folder and returns the
// import paths of its Go files. A folder that contains //go:embed directives
// has its whole tree hashed, because patterns may reach into subfolders.
func hashPackageDir(h hash.Hash, fset *token.FileSet, dir string, anyTags bool, rec *recorder) ([]string, error) {
	h.Write([]byte("package\x00" + dir + "\x00"))
	rec.note(dir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		h.Write([]byte("missing\x00"))
		return nil, nil // the compile will say which import is wrong
	}
	if err != nil {
		return nil, fmt.Errorf("hashing package %s: %w", dir, err)
	}
	var imports []string
	embeds := false
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, "_test.go") {
			continue
		}
		filename := filepath.Join(dir, name)
		data, isFile, err := hashEntry(h, filename, name, rec)
		if err != nil {
			return nil, err
		}
		if !isFile || !strings.HasSuffix(name, ".go") {
			continue
		}
		// Its content is hashed all the same: an edit of its build line
		// changes the key.
		if !mayBuild(data, anyTags) {
			continue
		}
		if bytes.Contains(data, []byte("//go:embed")) {
			embeds = true
		}
		// A file whose imports do not parse cannot compile either; its
		// content is hashed, and the compile reports the error.
		f, err := parser.ParseFile(fset, filename, data, parser.ImportsOnly|parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, imp := range f.Imports {
			if p, err := unquoteImport(imp); err == nil {
				imports = append(imports, p)
			}
		}
	}
	if embeds {
		if err := hashTree(h, dir, rec); err != nil {
			return nil, err
		}
	}
	return imports, nil
}

// hashTree hashes every file below dir's subfolders.
func hashTree(h hash.Hash, dir string, rec *recorder) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("hashing embedded files: %w", err)
		}
		if d.IsDir() {
			if p != dir {
				rec.note(p)
			}
			return nil
		}
		if filepath.Dir(p) == dir {
			return nil // files directly in dir are already hashed
		}
		_, _, err = hashEntry(h, p, p, rec)
		return err
	})
}

// hashEntry hashes the folder entry at p under label and returns its
// content when it is a file. A regular file, or a symlink to one, is
// hashed by content: the go command reads through such links. Anything
// else is hashed by its kind, and a symlink by its target: a symlink to a
// folder (a package may hold one, say to test data) is no file the
// compile reads, reading it fails, and reading a fifo would block.
func hashEntry(h hash.Hash, p, label string, rec *recorder) (data []byte, isFile bool, err error) {
	h.Write([]byte(label))
	h.Write([]byte{0})
	rec.note(p)
	fi, err := os.Stat(p)
	if err == nil && fi.Mode().IsRegular() {
		if data, err = os.ReadFile(p); err != nil {
			return nil, false, fmt.Errorf("hashing %s: %w", p, err)
		}
		writeLen(h, len(data))
		h.Write(data)
		return data, true, nil
	}
	lfi, lerr := os.Lstat(p)
	if lerr != nil {
		return nil, false, fmt.Errorf("hashing %s: %w", p, lerr)
	}
	h.Write([]byte("not a file\x00" + lfi.Mode().Type().String() + "\x00"))
	if lfi.Mode().Type() == fs.ModeSymlink {
		target, err := os.Readlink(p)
		if err != nil {
			return nil, false, fmt.Errorf("hashing %s: %w", p, err)
		}
		h.Write([]byte(target + "\x00"))
		if fi != nil {
			// Where the link leads matters too: a link turned from a
			// dangling one into a folder changes the key.
			h.Write([]byte(fi.Mode().Type().String() + "\x00"))
		}
	}
	return nil, false, nil
}
