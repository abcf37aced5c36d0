package dsl

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Pos is the Go source position that created a definition or a step.
//
// File and Line are the innermost frame outside package dsl: the line that
// called dsl, whose folder relative paths resolve against. When that line
// is inside a library function (blocks.App calling dsl.New), Callers holds
// the lines that led to it, outermost first, so that a message names the
// user's own line as well as the library's.
type Pos struct {
	File string
	Line int
	// Callers are the frames outside package dsl that called, directly or
	// through other functions, the code at File:Line, outermost first.
	// Only the definitions' own code is kept: the walk stops at the Go
	// runtime, the standard library (testing included) and the program's
	// main function, skips repeated lines and keeps at most maxFrames-1
	// frames (the outermost ones). Empty when dsl was called directly.
	Callers []Frame `json:",omitempty"`
}

// Frame is one line of Go code on the way to a Pos.
type Frame struct {
	File string
	Line int
}

// String returns "file.go:12" with the file relative to the working
// directory when that is shorter, so messages stay readable.
func (f Frame) String() string { return fmt.Sprintf("%s:%d", shortPath(f.File), f.Line) }

// maxFrames caps the frames of a Pos (Callers and File:Line together): a
// message names the user's line and the library's, not a whole stack.
const maxFrames = 4

// String returns the chain of lines that created the value, outermost
// first: "images/app.go:12 → blocks/blocks.go:45", or "images/app.go:12"
// when the code called dsl directly. Files are relative to the working
// directory when that is shorter, so messages stay readable.
func (p Pos) String() string {
	if p.File == "" {
		return "unknown position"
	}
	parts := make([]string, 0, len(p.Callers)+1)
	for _, f := range p.Frames() {
		parts = append(parts, f.String())
	}
	return strings.Join(parts, " → ")
}

// Frames returns Callers followed by File:Line: the whole chain, outermost
// first.
func (p Pos) Frames() []Frame {
	return append(slices.Clip(p.Callers), Frame{File: p.File, Line: p.Line})
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

// goSrc is the source folder of the Go installation the program was built
// with ("/usr/local/go/src/"), learnt from the runtime's own frame that runs
// package initialisation; "" when the program was built with -trimpath.
// A frame whose file is in it belongs to the standard library.
var goSrc = func() string {
	pcs := make([]uintptr, 16)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	for {
		f, more := frames.Next()
		if funcPackage(f.Function) == "runtime" && filepath.IsAbs(f.File) {
			return filepath.Dir(filepath.Dir(f.File)) + string(filepath.Separator)
		}
		if !more {
			return ""
		}
	}
}()

// caller returns the position of the first frame outside package dsl,
// with the frames outside dsl that led to it.
func caller() Pos {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var pos Pos
	found := false
	var outer []Frame // innermost first
	for {
		f, more := frames.Next()
		switch {
		case !found && (!inThisPackage(f.Function) || !more):
			pos, found = Pos{File: f.File, Line: f.Line}, true
		case !found || inThisPackage(f.Function):
			// dsl's own frames, such as With calling an Option.
		case outermost(f):
			more = false
		case f.File == pos.File && f.Line == pos.Line || slices.Contains(outer, Frame{File: f.File, Line: f.Line}):
			// A line already in the chain (recursion, a closure and its
			// caller on one line) says nothing new.
		default:
			outer = append(outer, Frame{File: f.File, Line: f.Line})
		}
		if !more {
			break
		}
	}
	if len(outer) > maxFrames-1 {
		// The outermost frames are the user's own lines; those in between
		// are the library's plumbing.
		outer = outer[len(outer)-(maxFrames-1):]
	}
	slices.Reverse(outer)
	if len(outer) > 0 {
		pos.Callers = outer
	}
	return pos
}

// outermost reports whether a frame is past the definitions' own code: the
// Go runtime (which runs package initialisation), the standard library
// (testing's tRunner, sync.Once) or the program's main function and its
// closures (the generated driver, mage's generated main calling a target).
func outermost(f runtime.Frame) bool {
	pkg := funcPackage(f.Function)
	switch {
	case f.Function == "" || f.Function == "main.main" || strings.HasPrefix(f.Function, "main.main.") || pkg == "runtime":
		return true
	case goSrc != "":
		return strings.HasPrefix(f.File, goSrc)
	default:
		// Built with -trimpath: standard library import paths have no dot
		// in their first element, module paths usually do.
		first, _, _ := strings.Cut(pkg, "/")
		return pkg != "main" && !strings.Contains(first, ".")
	}
}

// funcPackage is the import path of a function's package, from the name the
// runtime gives it: "example.com/images/blocks" for
// "example.com/images/blocks.App.func1", "sync" for "sync.(*Once).Do".
func funcPackage(fn string) string {
	fn, _, _ = strings.Cut(fn, "[") // type arguments may hold other paths
	slash := strings.LastIndex(fn, "/")
	dot := strings.Index(fn[slash+1:], ".")
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

func inThisPackage(fn string) bool {
	if !strings.HasPrefix(fn, thisPackage) {
		return false
	}
	rest := fn[len(thisPackage):]
	// "pkg.Func" or "pkg.(*T).Method", but not "pkg_test.Func" or "pkg/sub.Func".
	return strings.HasPrefix(rest, ".")
}
