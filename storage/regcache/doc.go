// Package regcache shares strata's build cache through an OCI registry.
//
// A build with --cache-to REGISTRY/REPO uploads, for every image it built
// or found cached, the image's layer blobs (one per layer type) and a cache
// record under the tag
//
//	REPO:strata-cache-<the 64 hex digits of the image's cache key>
//
// The tag points at an OCI image manifest whose artifactType and config
// media type are MediaTypeRecord; its layers are the layer blobs, so the
// registry keeps them as long as the tag exists and any OCI registry can
// store it. The config is the record, for example:
//
//	{"key":"sha256:…","image":"hello","layers":[{"type":"tar+gzip",
//	  "descriptor":{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",
//	  "digest":"sha256:…","size":1234},"diffID":"sha256:…"}]}
//
// It holds only what another store needs to stand in for running the
// image's steps: the key, the image name, whether the steps changed
// nothing, and per layer type the blob's descriptor and diff id. No build
// environment, secret, key document or host path is uploaded.
//
// A build with --cache-from fetches the record for each image it would
// otherwise run, downloads and verifies the blobs, unpacks one of them into
// the store as the image's layer folder and commits the record, exactly as
// if the steps had run here. Fetch reports a missing tag as ErrMiss; every
// other failure (registry down, bad record, digest mismatch) is an error
// the caller shows as a warning before running the steps itself.
package regcache
