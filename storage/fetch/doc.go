// Package fetch brings what a build takes from outside into the store:
// base images pulled from registries, files downloaded from URLs, and
// rootfs tarballs turned into base layers.
//
// Everything fetched lands in the store's blob store under its digest, so
// a base pinned by digest or a URL pinned by its sha256 is fetched once and
// then used offline forever; a base named by a tag costs one manifest
// request (see Resolve) to learn which digest the tag points at.
//
// What comes from outside is untrusted. Every blob is checked against its
// digest before it is stored. Layers are unpacked by storage/layer, which
// keeps every entry inside the unpacked folder and refuses, naming it, an
// entry that climbs out of the rootfs ("../", "/../", hard links to such
// paths; an absolute name stays inside) or a malformed whiteout, whatever the source
// (layer.CheckEntry); tarball bases are also scanned here by the same
// check, so they are refused before anything is unpacked.
package fetch
