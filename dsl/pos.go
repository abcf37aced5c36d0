package dsl

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// Pos is the Go source position that created a definition or a step.
type Pos struct {
	File string
	Line int
}

// String returns "file.go:12" with the file relative to the working
// directory when that is shorter, so messages stay readable.
func (p Pos) String() string {
	if p.File == "" {
		return "unknown position"
	}
	return fmt.Sprintf("%s:%d", shortPath(p.File), p.Line)
}

// Dir is the folder of the Go file, against which relative paths resolve.
func (p Pos) Dir() string { return filepath.Dir(p.File) }

func shortPath(path string) string {
	wd, err := filepath.Abs(".")
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return rel
}

// thisPackage is the import path prefix of dsl's own frames: positions skip
// them so that a step created through a helper of this package (With,
// Option) still points at the user's code.
var thisPackage = func() string {
	pc, _, _, _ := runtime.Caller(0)
	name := runtime.FuncForPC(pc).Name() // ".../dsl.init.func1"
	slash := strings.LastIndex(name, "/")
	return name[:slash+strings.Index(name[slash:], ".")]
}()

// caller returns the first frame outside package dsl.
func caller() Pos {
	pcs := make([]uintptr, 16)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !inThisPackage(f.Function) {
			return Pos{File: f.File, Line: f.Line}
		}
		if !more {
			return Pos{File: f.File, Line: f.Line}
		}
	}
}

func inThisPackage(fn string) bool {
	if !strings.HasPrefix(fn, thisPackage) {
		return false
	}
	rest := fn[len(thisPackage):]
	// "pkg.Func" or "pkg.(*T).Method", but not "pkg_test.Func" or "pkg/sub.Func".
	return strings.HasPrefix(rest, ".")
}
