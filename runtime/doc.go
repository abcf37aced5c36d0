// Package runtime executes a build graph: it decides per node whether the
// cache already has its layer, runs the steps of the others inside
// namespaces over an overlay of their ancestors' layers (through package
// sandbox), hands the result to storage to commit, and reports progress
// (live on a terminal through package display).
// It implements no layer encoding: it calls storage/layer's, for a
// build's commit inside the sandbox (where a rootless build can read
// what its steps wrote), and directly when a committed folder gets
// another layer type as root.
package runtime
