// Package layer owns the byte format of strata's image layers: it encodes the
// overlayfs upper dir of a build (one image = one layer) into an OCI layer
// blob (tar+gzip, tar+zstd or a stacker-style squashfs), and unpacks layer
// blobs of any supported media type into directories in overlay-lower format,
// so that they can be stacked as lowerdirs of later builds.
//
// The package knows nothing about the store, the cache or the image layout:
// Write produces one blob file plus its digests, Unpack consumes one. Callers
// move the blob into the CAS and record descriptors.
//
// Encoding reads only the upper dir, so its cost grows with what a build
// changed, not with the size of its base. Output is reproducible: entries are
// written in a fixed order, timestamps are clamped to SourceDateEpoch and
// host-specific metadata (user names, atime, ctime) is never recorded, so the
// same tree gives the same digests on every machine, whatever its CPU count.
package layer
