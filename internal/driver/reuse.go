package driver

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The definitions document a driver writes is a function of the driver's
// inputs (its cache key), the environment, the working folder and the
// user ids — as long as the definitions read nothing else while they
// initialise: no file, no clock, no network, no other process. Go offers
// no way to watch a program's reads (the go command's test cache uses a
// hook of package os that only package testing can set), so strata checks
// the code instead, once per compile: the definitions package and every
// local package it imports may only import strata's dsl, other local
// packages and the standard packages below, and use only the parts of
// those that compute. Anything else — a third-party module, os.ReadFile,
// filepath.Glob, time.Now, printing — makes the driver run at every
// command, as before the document cache existed. The check errs on the
// safe side: a false "reads something" costs a driver run.

// stdRule says what of a standard package definitions may use and still
// have their document reused: everything but deny, or, when only is set,
// nothing but only.
type stdRule struct {
	only []string
	deny []string
}

var computeOnly = map[string]stdRule{
	"bufio": {}, "bytes": {}, "cmp": {}, "container/heap": {}, "container/list": {}, "container/ring": {},
	"context": {deny: []string{"WithTimeout", "WithDeadline", "WithTimeoutCause", "WithDeadlineCause"}}, "crypto/md5": {}, "crypto/sha1": {}, "crypto/sha256": {}, "crypto/sha512": {}, "crypto/sha3": {},
	"embed": {}, "encoding": {}, "encoding/base32": {}, "encoding/base64": {}, "encoding/binary": {},
	"encoding/csv": {}, "encoding/hex": {}, "encoding/json": {}, "encoding/pem": {}, "encoding/xml": {},
	"errors": {}, "hash": {}, "hash/adler32": {}, "hash/crc32": {}, "hash/crc64": {}, "hash/fnv": {},
	"html": {}, "io": {}, "io/fs": {}, "iter": {}, "maps": {}, "math": {}, "math/big": {}, "math/bits": {},
	"math/cmplx": {}, "net/netip": {}, "net/url": {}, "path": {}, "reflect": {}, "regexp": {},
	"regexp/syntax": {}, "slices": {}, "sort": {}, "strconv": {}, "strings": {}, "sync": {}, "sync/atomic": {},
	"text/tabwriter": {}, "unicode": {}, "unicode/utf16": {}, "unicode/utf8": {}, "unique": {},

	"fmt": {deny: []string{"Print", "Printf", "Println", "Scan", "Scanf", "Scanln"}},
	// The environment, the working folder and the ids are in the key.
	"os": {only: []string{"Getenv", "LookupEnv", "Environ", "ExpandEnv", "Expand", "Getwd",
		"Getuid", "Geteuid", "Getgid", "Getegid", "Exit", "PathSeparator", "PathListSeparator", "DevNull",
		"ErrNotExist", "ErrExist", "ErrPermission", "ErrInvalid", "IsNotExist", "IsExist", "IsPermission",
		"FileMode", "FileInfo", "DirEntry", "ModeDir", "ModePerm", "ModeSymlink", "ModeSetuid", "ModeSetgid",
		"ModeSticky", "ModeType", "ModeIrregular", "ModeNamedPipe", "ModeSocket", "ModeDevice", "ModeCharDevice"}},
	"path/filepath": {deny: []string{"Glob", "Walk", "WalkDir", "EvalSymlinks"}},
	"runtime":       {deny: []string{"NumCPU", "GOMAXPROCS", "NumGoroutine", "ReadMemStats", "NumCgoCall"}},
	"runtime/debug": {only: []string{"ReadBuildInfo", "BuildInfo", "Module", "BuildSetting"}},
	"text/template": {deny: []string{"ParseFiles", "ParseGlob"}},
	"html/template": {deny: []string{"ParseFiles", "ParseGlob"}},
	// Unix and Parse give times in the local zone, which /etc/localtime
	// sets.
	"time": {deny: []string{"Now", "Since", "Until", "Local", "LoadLocation", "Sleep", "After", "AfterFunc",
		"Tick", "NewTimer", "NewTicker", "Unix", "UnixMilli", "UnixMicro", "Parse"}},
}

// readingMethods are method names that read files whatever package their
// receiver comes from (a template's ParseFiles, a time's Local); a
// selector with one of these names anywhere makes the definitions read
// the outside.
var readingMethods = []string{"ParseFiles", "ParseGlob", "Local",
	// A method called by its name (reflect) may be any of the above; a
	// context's deadline is read off the clock.
	"MethodByName", "Method", "Deadline"}

// otherSources are the suffixes of files the go command compiles or links
// beside Go files (assembly, cgo, objects): the check cannot read what
// they do, so a package holding one is taken to read the outside.
var otherSources = []string{".s", ".S", ".sx", ".syso", ".c", ".cc", ".cpp", ".cxx", ".m", ".f", ".F", ".for", ".f90"}

// notReusable returns why the document of the definitions in pkgDir may
// depend on more than its cache key, or "" when it may not. dslImport is
// strata's dsl, trusted: it reads nothing while definitions initialise
// but the environment. A file it cannot read or parse is a reason too:
// the compile, which comes next, reports it.
func notReusable(ws *workspace, pkgDir, dslImport string) string {
	// Files the compile reads that no hash or stamp covers.
	for _, flag := range []string{"-overlay", "-modfile"} {
		if goFlagsMention(flag) {
			return "GOFLAGS sets " + flag
		}
	}
	fset := token.NewFileSet()
	// Files no build selects are not compiled, and so read nothing (a
	// magefile beside the definitions).
	anyTags := tagsMayBeSet()
	seen := map[string]bool{pkgDir: true}
	queue := []string{pkgDir}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the compile will say
		}
		if err != nil {
			return err.Error()
		}
		for _, e := range entries {
			name := e.Name()
			if !e.IsDir() && slices.Contains(otherSources, filepath.Ext(name)) {
				return fmt.Sprintf("%s holds %s, which is not Go", dir, name)
			}
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			file := filepath.Join(dir, name)
			src, err := os.ReadFile(file)
			if err != nil {
				return err.Error()
			}
			if !mayBuild(src, anyTags) {
				continue
			}
			f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
			if err != nil {
				return err.Error()
			}
			why, local := checkFile(fset, f, ws, dslImport)
			if why != "" {
				return why
			}
			for _, d := range local {
				if !seen[d] {
					seen[d] = true
					queue = append(queue, d)
				}
			}
		}
	}
	return ""
}

// checkFile applies the rule to one file: the reason it breaks it, if it
// does, and the folders of the local packages it imports.
func checkFile(fset *token.FileSet, f *ast.File, ws *workspace, dslImport string) (string, []string) {
	var local []string
	rules := map[string]stdRule{} // by the name the file gives the package
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return fmt.Sprintf("%s: bad import", fset.Position(imp.Pos())), nil
		}
		if p == dslImport {
			continue
		}
		if d, ok := ws.localDir(p); ok {
			local = append(local, d)
			continue
		}
		rule, ok := computeOnly[p]
		if !ok {
			return fmt.Sprintf("%s: imports %s", fset.Position(imp.Pos()), p), nil
		}
		name := p[strings.LastIndexByte(p, '/')+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		restricted := rule.only != nil || rule.deny != nil
		if name == "." && restricted {
			return fmt.Sprintf("%s: dot-imports %s", fset.Position(imp.Pos()), p), nil
		}
		if restricted && name != "_" {
			rules[name] = rule
		}
	}
	why := ""
	ast.Inspect(f, func(n ast.Node) bool {
		if why != "" {
			return false
		}
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if slices.Contains(readingMethods, n.Sel.Name) {
				why = fmt.Sprintf("%s: calls %s", fset.Position(n.Pos()), n.Sel.Name)
				return false
			}
			x, ok := n.X.(*ast.Ident)
			if !ok {
				return true
			}
			rule, ok := rules[x.Name]
			if !ok {
				return true
			}
			sel := n.Sel.Name
			if (rule.only != nil && !slices.Contains(rule.only, sel)) || slices.Contains(rule.deny, sel) {
				why = fmt.Sprintf("%s: uses %s.%s", fset.Position(n.Pos()), x.Name, sel)
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "print" || id.Name == "println") {
				why = fmt.Sprintf("%s: prints", fset.Position(n.Pos()))
			}
		case *ast.FuncDecl:
			if n.Body == nil { // written in assembly or linked by name
				why = fmt.Sprintf("%s: declares %s without a body", fset.Position(n.Pos()), n.Name.Name)
			}
		}
		return true
	})
	return why, local
}
