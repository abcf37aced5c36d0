package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-build/strata/internal/timings"
)

// DefaultStrataImport is the import path of strata's module; the generated
// main uses its dsl sub-package (Image, Target, DriverMain).
const DefaultStrataImport = "github.com/strata-build/strata"

// Options configure [Prepare]. The zero value prepares the package in the
// working directory.
type Options struct {
	Dir      string // folder of the definitions package; default "."
	CacheDir string // default: os.UserCacheDir()/strata/drivers
	GoCmd    string // go command; default "go" from PATH, then $GOROOT/bin/go
	Force    bool   // compile even when a cached binary matches

	// StrataImport is the import path whose "dsl" sub-package provides
	// Image, Target and DriverMain. Default DefaultStrataImport. Tests point
	// it at a stand-in so they need neither the network nor the real API.
	StrataImport string

	// Stderr receives the go command's progress (module downloads) while it
	// runs and the warnings of a successful compile. Compile errors are not
	// written here: they are returned as *CompileError. Default: discarded.
	Stderr io.Writer
}

// Driver is a compiled driver binary ready to exec.
type Driver struct {
	Binary   string   // absolute path of the executable in the cache
	Targets  []Target // in declaration order
	Compiled bool     // false when served from the cache
	Package  string   // import path of the definitions package
	// Warnings name exported variables that may be images but are not
	// targets because the scan could not tell their type, one
	// "file.go:12: message" each; a cache hit repeats them.
	Warnings []string
	// NotReusable says why the definitions document is never taken from
	// the cache ("file.go:12: uses os.ReadFile"), "" when it may be; see
	// [Driver.Definitions].
	NotReusable string

	entry    string // the cache entry holding the binary
	reusable bool
}

// CompileError is returned when the definitions do not compile. Its message
// is the compiler's, one file:line:col: message per line, with nothing
// added, so the CLI can print it as it is.
type CompileError struct {
	Output string
}

// Error returns the compiler's messages.
func (e *CompileError) Error() string { return e.Output }

// Prepare returns the driver binary for the definitions package in
// opts.Dir, compiling it only when no cached binary matches the current
// inputs. A cache hit runs no process and parses only import blocks.
// Cancelling ctx stops the compile and removes its temporary files.
func Prepare(ctx context.Context, opts Options) (*Driver, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("definitions folder: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("definitions folder %s is not a folder", dir)
	}
	ws, err := findWorkspace(dir)
	if err != nil {
		return nil, err
	}
	pkgPath, err := ws.importPath(dir)
	if err != nil {
		return nil, err
	}
	tool, err := findGo(opts.GoCmd)
	if err != nil {
		return nil, err
	}
	folder := filepath.Join(opts.CacheDir, folderKey(dir))
	done := timings.Phase("driver: key")
	key, saveKey, err := currentKey(folder, ws, dir, tool, opts.StrataImport, opts.Force)
	done()
	if err != nil {
		return nil, err
	}
	entry := filepath.Join(folder, key)
	if !opts.Force {
		if d, ok := load(entry); ok {
			// The modification time orders entries for pruning: a binary in
			// use should outlive ones that are not.
			now := time.Now()
			_ = os.Chtimes(entry, now, now)
			saveKey()
			return d, nil
		}
	}

	s, err := scanPackage(dir, ws, path.Join(opts.StrataImport, "dsl"))
	if err != nil {
		return nil, err
	}
	if err := s.check(dir); err != nil {
		return nil, err
	}
	why := notReusable(ws, dir, path.Join(opts.StrataImport, "dsl"))
	info := entryInfo{Package: pkgPath, Warnings: s.warnings, Reusable: why == "", NotReusable: why}
	for _, d := range s.defs {
		info.Targets = append(info.Targets, d.Target)
	}
	cwd, _ := os.Getwd()
	err = compile(ctx, buildSpec{
		goCmd:   tool.Path,
		pkgDir:  dir,
		key:     key,
		main:    generateMain(opts.StrataImport, pkgPath, s.defs),
		info:    info,
		entry:   entry,
		stderr:  opts.Stderr,
		workDir: cwd,
	})
	if err != nil {
		return nil, err
	}
	prune(folder, entry)
	saveKey()
	return &Driver{Binary: filepath.Join(entry, binaryName()), Targets: info.Targets, Compiled: true, Package: pkgPath,
		Warnings: relativeWarnings(info.Warnings, cwd), NotReusable: why, entry: entry, reusable: why == ""}, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		o.Dir = "."
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, fmt.Errorf("definitions folder %s: %w", o.Dir, err)
	}
	// Resolve symlinks so that the cache key, the module root found by
	// walking up and the paths the go command prints all agree.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	o.Dir = dir
	if o.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("locating the driver cache (set Options.CacheDir): %w", err)
		}
		o.CacheDir = filepath.Join(base, "strata", "drivers")
	}
	if o.CacheDir, err = filepath.Abs(o.CacheDir); err != nil {
		return o, fmt.Errorf("driver cache %s: %w", o.CacheDir, err)
	}
	if o.StrataImport == "" {
		o.StrataImport = DefaultStrataImport
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	return o, nil
}

// folderKey names the cache folder of one definitions folder: readable,
// and unique through the hash of the full path.
func folderKey(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	name := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '_'
	}, filepath.Base(dir))
	return name + "-" + hex.EncodeToString(sum[:6])
}

// load returns the driver of a complete cache entry.
func load(entry string) (*Driver, bool) {
	data, err := os.ReadFile(filepath.Join(entry, targetsFile))
	if err != nil {
		return nil, false
	}
	var info entryInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, false
	}
	bin := filepath.Join(entry, binaryName())
	if _, err := os.Stat(bin); err != nil {
		return nil, false
	}
	cwd, _ := os.Getwd()
	return &Driver{Binary: bin, Targets: info.Targets, Package: info.Package, Warnings: relativeWarnings(info.Warnings, cwd),
		NotReusable: info.NotReusable, entry: entry, reusable: info.Reusable}, true
}
