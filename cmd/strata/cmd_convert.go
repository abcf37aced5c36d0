package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/convert/dockerfile"
	"github.com/strata-build/strata/internal/convert/stacker"
	"github.com/strata-build/strata/internal/driver"
)

// convertFlags are the flags of strata convert.
type convertFlags struct {
	out, pkg      string
	force         bool
	context, name string // Dockerfiles only
}

func (f *convertFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.out, "o", ".", "`folder` to write the Go package into; with several stacker.yaml files (given, or named by config.prerequisites) each goes into its own package DIR/NAME, NAME the base of the folder holding it")
	fs.StringVar(&f.pkg, "package", "", "`name` of the Go package when one file is converted (default: from the folder's base name)")
	fs.BoolVar(&f.force, "force", false, "overwrite Go files that exist")
	fs.StringVar(&f.context, "context", "", "a Dockerfile's build context `folder`, as docker build CONTEXT (default: the Dockerfile's folder)")
	fs.StringVar(&f.name, "name", "", "image `name` of a Dockerfile's last stage (default: the context folder's name)")
}

// convertFile is the name of the Go file strata convert writes in each
// package.
const convertFile = "images.go"

// yamlFile is one stacker.yaml to convert and where it goes.
type yamlFile struct {
	path    string // absolute
	arg     string // as the user named it (or as a prerequisite was written)
	data    []byte
	parsed  *stacker.File
	outDir  string // absolute
	pkg     string
	imports string // the Go import path of outDir, when known
}

// cmdConvert converts stacker.yaml files into Go packages of definitions.
func cmdConvert(_ context.Context, args []string) error {
	return runConvert(os.Stdout, args)
}

// runConvert is strata convert, reporting on w: what it wrote, then what
// has no strata equivalent (also comments of the Go code), so that the
// user reads the list once rather than searching the files for it.
func runConvert(w io.Writer, args []string) error {
	fs := newFlagSet("convert")
	var f convertFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cmdline.UsageError{Err: errors.New("which file? strata convert stacker.yaml... [-o DIR]")}
	}
	for _, p := range pos {
		if b := filepath.Base(p); b == "Dockerfile" || strings.HasSuffix(b, ".Dockerfile") {
			if len(pos) > 1 {
				return cmdline.UsageError{Err: fmt.Errorf("%s: convert one Dockerfile at a time, without stacker.yaml files", p)}
			}
			return convertDockerfile(w, p, f)
		}
	}
	if f.context != "" || f.name != "" {
		return cmdline.UsageError{Err: errors.New("--context and --name are for Dockerfiles")}
	}
	files, err := collectYAML(pos)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(f.out)
	if err != nil {
		return err
	}
	if err := placePackages(files, out, f.pkg); err != nil {
		return err
	}
	// Everything is converted before anything is written, so a failure
	// leaves no half-converted tree behind.
	byPath := map[string]*yamlFile{}
	results := map[*yamlFile][]byte{}
	var notes []string
	for _, y := range files {
		var pre []stacker.Prerequisite
		for _, p := range y.parsed.Prerequisites {
			dep := byPath[resolveFrom(y.path, p)]
			pre = append(pre, stacker.Prerequisite{Path: p, ImportPath: dep.imports, Package: dep.pkg, Layers: dep.parsed.Layers})
		}
		byPath[y.path] = y
		yamlDir, outDir := filepath.Dir(y.path), y.outDir
		res, err := stacker.Convert(y.data, stacker.Options{
			File:          y.arg,
			Package:       y.pkg,
			Prerequisites: pre,
			LocalPath: func(p string) string {
				if filepath.IsAbs(p) {
					return p
				}
				rel, err := filepath.Rel(outDir, filepath.Join(yamlDir, p))
				if err != nil {
					return p
				}
				if strings.HasSuffix(p, "/") {
					rel += "/"
				}
				return filepath.ToSlash(rel)
			},
			IsDir: func(p string) bool {
				if !filepath.IsAbs(p) {
					p = filepath.Join(yamlDir, p)
				}
				fi, err := os.Stat(p)
				return err == nil && fi.IsDir()
			},
		})
		if err != nil {
			return err
		}
		results[y] = res.Source
		for _, n := range res.Unsupported {
			notes = append(notes, y.arg+": "+n)
		}
	}
	// Nothing is written unless every file may be.
	for _, y := range files {
		if err := mayWrite(y.outDir, f.force); err != nil {
			return err
		}
	}
	for _, y := range files {
		target, err := writeConverted(y.outDir, results[y])
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: wrote %s (package %s: %s)\n", y.arg, relToCwd(target), y.pkg, strings.Join(y.parsed.Layers, ", "))
	}
	printUnsupported(w, notes)
	return nil
}

// mayWrite refuses to overwrite the converted file of dir without --force.
func mayWrite(dir string, force bool) error {
	target := filepath.Join(dir, convertFile)
	if _, err := os.Stat(target); err == nil && !force {
		return fmt.Errorf("%s exists: strata convert does not overwrite it without --force", target)
	}
	return nil
}

// writeConverted writes src as the converted file of dir and returns its
// path.
func writeConverted(dir string, src []byte) (string, error) {
	target := filepath.Join(dir, convertFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return target, os.WriteFile(target, src, 0o644)
}

// printUnsupported lists what a conversion kept as comments.
func printUnsupported(w io.Writer, notes []string) {
	if len(notes) == 0 {
		return
	}
	fmt.Fprintf(w, "\nWithout strata equivalent (kept as comments in the Go code):\n")
	for _, n := range notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

// packageFor is the package name of the file written into out: pkg, or
// the package already there, or one made of out's name.
func packageFor(out, pkg string) (string, error) {
	if pkg == "" {
		pkg = existingPackage(out, packageName(filepath.Base(out)))
	}
	if !token.IsIdentifier(pkg) || token.IsKeyword(pkg) {
		return "", cmdline.UsageError{Err: fmt.Errorf("--package %q is not a Go package name", pkg)}
	}
	return pkg, nil
}

// collectYAML reads the files named and, transitively, their
// config.prerequisites, each once, every prerequisite before the files
// that need it.
func collectYAML(args []string) ([]*yamlFile, error) {
	var out []*yamlFile
	state := map[string]int{} // 1: being read, 2: done
	var visit func(p, arg, from string) error
	visit = func(p, arg, from string) error {
		switch state[p] {
		case 1:
			return fmt.Errorf("%s: config.prerequisites: %s needs itself", from, arg)
		case 2:
			return nil
		}
		state[p] = 1
		data, err := os.ReadFile(p)
		if err != nil {
			if from != "" {
				return fmt.Errorf("%s: config.prerequisites: %w", from, err)
			}
			return err
		}
		parsed, err := stacker.Parse(data, arg)
		if err != nil {
			return err
		}
		for _, pre := range parsed.Prerequisites {
			dep := resolveFrom(p, pre)
			if err := visit(dep, relToCwd(dep), arg); err != nil {
				return err
			}
		}
		state[p] = 2
		out = append(out, &yamlFile{path: p, arg: arg, data: data, parsed: parsed})
		return nil
	}
	for _, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		if err := visit(p, a, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveFrom resolves a prerequisite's path against the folder of the
// yaml that names it, as stacker does.
func resolveFrom(yamlPath, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(filepath.Dir(yamlPath), p)
}

// placePackages decides each file's folder, package name and import path:
// one file goes into out, several into out/NAME each, NAME the base of the
// folder that holds the yaml.
func placePackages(files []*yamlFile, out, pkg string) error {
	if len(files) == 1 {
		y := files[0]
		y.outDir = out
		var err error
		y.pkg, err = packageFor(out, pkg)
		return err
	}
	if pkg != "" {
		return cmdline.UsageError{Err: fmt.Errorf("--package names one package, but %d files are converted (each goes into its own)", len(files))}
	}
	seen := map[string]string{}
	needImports := false
	for _, y := range files {
		name := packageName(filepath.Base(filepath.Dir(y.path)))
		if other, ok := seen[name]; ok {
			return fmt.Errorf("%s and %s would both go into %s: convert them separately", other, y.arg, filepath.Join(out, name))
		}
		seen[name] = y.arg
		y.outDir = filepath.Join(out, name)
		y.pkg = existingPackage(y.outDir, name)
		needImports = needImports || len(y.parsed.Prerequisites) > 0
	}
	if !needImports {
		return nil
	}
	modDir, modPath, err := driver.FindModule(out)
	if err != nil {
		return fmt.Errorf("config.prerequisites become Go imports, so -o must be in a Go module: %w", err)
	}
	for _, y := range files {
		rel, err := filepath.Rel(modDir, y.outDir)
		if err != nil {
			return err
		}
		y.imports = path.Join(modPath, filepath.ToSlash(rel))
	}
	return nil
}

// packageName makes a Go package name of a folder name: lower case,
// letters and digits only ("my-app" is myapp).
func packageName(base string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if s == "" || s[0] >= '0' && s[0] <= '9' || token.IsKeyword(s) || s == "dsl" {
		s = "images" + s
	}
	return s
}

// existingPackage is the package of the Go files already in dir, which
// the converted file must join, or def when there are none.
func existingPackage(dir, def string) string {
	names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") || filepath.Base(n) == convertFile {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), n, nil, parser.PackageClauseOnly)
		if err == nil && f.Name.Name != "main" {
			return f.Name.Name
		}
	}
	return def
}

// relToCwd shortens an absolute path for messages.
func relToCwd(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

// convertDockerfile converts one Dockerfile into DIR/images.go: one image
// per stage, build-only for all but the last (internal/convert/dockerfile).
func convertDockerfile(w io.Writer, file string, f convertFlags) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(f.out)
	if err != nil {
		return err
	}
	ctxDir := f.context
	if ctxDir == "" {
		ctxDir = filepath.Dir(file)
	}
	if ctxDir, err = filepath.Abs(ctxDir); err != nil {
		return err
	}
	pkg, err := packageFor(out, f.pkg)
	if err != nil {
		return err
	}
	name := f.name
	if name == "" {
		name = strings.Trim(strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
				return r
			}
			return '-'
		}, strings.ToLower(filepath.Base(ctxDir))), "-._")
		if name == "" {
			name = "app"
		}
	}
	res, err := dockerfile.Convert(src, dockerfile.Options{Package: pkg, Name: name, File: file, Context: ctxDir, Out: out})
	if err != nil {
		return err
	}
	if err := mayWrite(out, f.force); err != nil {
		return err
	}
	target, err := writeConverted(out, res.Source)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: wrote %s (package %s; the last stage is image %q)\n", file, relToCwd(target), pkg, name)
	printUnsupported(w, res.Unsupported)
	return nil
}
