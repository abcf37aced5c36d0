// Package publish pushes images assembled in a strata store to registries.
//
// The store already holds every blob of a built image (manifest, config,
// layers) in its blob store; this package presents such an image to
// go-containerregistry without copying it, so that a push sends the exact
// manifest bytes the build wrote (the digest in the registry is the digest
// in the layout), skips blobs the registry already has, and mounts layers
// from other repositories of the same registry instead of uploading them
// again. Every registry call goes through storage/registry, so credentials,
// plain HTTP and private CAs work as they do for pulls and the cache.
package publish
