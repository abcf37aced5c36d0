// Package driver turns a folder of image definitions into a cached
// executable, the way mage turns magefiles into one.
//
// A definitions folder is an ordinary Go package whose exported
// *dsl.Image variables are build targets. [Prepare] finds them, generates a
// main package that hands them to dsl.DriverMain, compiles it with the go
// command and caches the binary under a hash of everything that can change
// it. The CLI then runs that binary ([Driver.Run]), which writes the
// definitions in dsl's serialized form (dsl.WriteDefinitions) to a pipe, and
// builds what it reads.
//
// The generated main imports nothing but dsl and the definitions package,
// which imports dsl itself: so a module whose go.sum go mod tidy wrote for
// the user's own code always has what the driver needs, and a definitions
// edit relinks a small program rather than all of strata.
//
// # Which variables are definitions
//
// The scan is syntactic (go/parser only, no type checker, no go list) so that
// listing targets and checking the cache stay in the millisecond range. A
// package-level variable of a non-test file that the build constraints select
// is an image when
//
//   - it is declared with the explicit type *dsl.Image, where dsl is whatever
//     name the file gives the import "github.com/strata-build/strata/dsl", or
//     with a type declared as *dsl.Image (type App = *dsl.Image); or
//   - it has no explicit type and its initializer is an image expression:
//     a call of a dsl function (dsl.New("x")), a method call on an image
//     expression (dsl.New("x").From(b).Run("...")), a call of a function
//     declared to return *dsl.Image, another image variable (exported or
//     not), or &dsl.Image{...}.
//
// The functions and variables may be the package's own or those of another
// package whose source is on disk (a package of the module, of a local
// replace or workspace module, vendored, or in the module cache): the scan
// parses that package the same way to read the result types it declares, so
// var App = blocks.GoService("app") is a target when GoService returns
// *dsl.Image. When one call initialises several names (var A, B = pair()),
// each takes the declared type of its result.
//
// Exported image variables are the targets; unexported ones only count as
// roots of other images. When the dsl package's source can be found the
// declared result types of its functions and methods refine the rule, so
// var Base = dsl.Scratch() (a dsl.Base) or var N = App.Name() (a string) are
// not mistaken for images. Names the dsl source does not declare (a
// func-typed variable, a newer version) fall back to the syntactic rule; if
// that takes a non-image for a target, the compile error names the
// variable's own file:line and says to declare its type.
//
// A target is never dropped silently. An exported variable whose type the
// scan cannot establish (a package whose source is not on disk, a generic
// function, a method of a library's own type, an element or field of a value
// of unknown type) is not a target, and the scan returns a warning with its
// file:line that says to declare the type: var App *dsl.Image = ....
// Values that are obviously not images (literals, constants, operators,
// function literals, calls into the standard library) give no warning.
// The warnings are kept with the cached driver, so a cache hit repeats them
// ([Driver.Warnings]).
//
// # Cache
//
// The cache key hashes, without running any process: the identity of the go
// binary (path, size, modification time), GOOS/GOARCH and the environment
// variables that change a build, the go env file, the generator's version and
// strata import path, go.mod, go.sum (and go.work, go.work.sum,
// vendor/modules.txt), and the contents of every file of the definitions
// package and of every package of a local module (the main module, local
// replace targets, workspace modules) it imports, transitively. Contents are
// hashed rather than modification times: touching a file costs nothing,
// editing an imported local package rebuilds. The generated main is a
// function of these inputs, so a hit neither scans nor generates: the
// targets are stored next to the binary.
//
// Reading every input on every command would cost more than the rest of a
// cached build, so a run that computed the key records, beside the
// entries (inputs.json), the key with the stamp of every file and folder
// it read: device, inode, mode, size, modification and change times. The
// next run stats those paths and takes the recorded key when every stamp
// is unchanged and nothing the key covers outside files changed. The change
// time, which no user call can set back, makes this sound against an edit
// that keeps size and modification time; stamps of files changed within
// two seconds of the computation are not recorded (a file system keeps
// times at a tick's precision, so such a file could change again unseen),
// and the next run reads the contents again.
//
// # Definitions documents
//
// A run of the driver writes the definitions document; [Driver.Definitions]
// keeps it in the driver's entry, keyed by the whole environment (build
// parameters travel in STRATA_PARAMS), the working folder and the user and
// group ids, and hands it back without running the driver while those are
// unchanged. That is only sound when the definitions read nothing else
// while they initialise, which Go gives no way to watch, so it is checked
// on the code at compile time (reuse.go): the definitions package and the
// local packages it imports may import only strata's dsl, local packages
// and a list of standard packages that compute, and use of os only the
// environment, of path/filepath no Glob or Walk, of time no clock, and
// nothing that prints. Definitions that do anything else (read a VERSION
// file, list a folder, import another module) run their driver at every
// command; [Driver.NotReusable] says why.
//
// Nothing is ever written into the user's tree: the generated main is placed
// at a virtual path inside the package folder with the go command's -overlay
// flag, and the binary is built into the cache folder and renamed into place
// atomically.
package driver
