// Package dsl is strata's public API for writing image definitions as Go
// values.
//
// An image definition is an immutable *Image: every method returns a new
// value and leaves the receiver untouched, so a base defined once can be
// shared by many images without surprises. Definitions are lowered by
// Evaluate into a validated, deterministic build Graph whose nodes carry a
// content-addressed cache key; the graph is what strata executes, what
// `strata graph` draws and what users assert on in ordinary `go test` unit
// tests.
//
// Every definition and step remembers the Go file:line that created it, and
// relative paths (imports, local layouts) resolve against the folder of that
// Go file, never against the working directory of whoever runs the build.
// When a library function created it, the position (Pos) also names the
// lines that called the library, so messages point at the user's code too;
// a library that works on its caller's files takes them as Source values
// made at the call site, which resolve against the caller's folder.
//
// The package does no I/O beyond reading the files it hashes for cache keys
// and the index of local OCI layouts used as bases.
package dsl
