// Package runtime executes a build graph: it decides per node whether the
// cache already has its layer, runs the steps of the others inside
// namespaces over an overlay of their ancestors' layers (through package
// sandbox), hands the result to storage to commit, and reports progress
// (live on a terminal through package display).
// It implements no layer encoding: it calls storage/layer's on each
// committed layer folder, directly as root, and rootless through the
// commit finisher in a sandbox without steps (only the build's user
// namespace reads what its steps wrote).
package runtime
