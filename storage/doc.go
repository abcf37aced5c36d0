// Package storage owns strata's on-disk store and its output: the unpacked
// layers every overlay is made of, the content-addressed blobs, the cache
// records that map a node's cache key to its committed layer, the lock that
// keeps two builds from writing one store at once, and the OCI image layout
// the built images are tagged in.
//
// Layout of a store folder:
//
//	lock              flock(2)ed by the build that owns the store
//	CACHEDIR.TAG      marks the folder as a store (and a cache, for backup
//	                  tools): dsl.Dir of a folder that holds it skips it
//	oci/              an OCI layout used as the blob store (umoci's dir CAS)
//	layers/ID/        one unpacked layer in overlayfs format (a lower dir)
//	cache/KEY.json    cache records, written atomically
//	diffids/ALG/HEX   the diff ID this store verified for the layer blob
//	                  ALG:HEX when it unpacked it (see Store.UnpackBase)
//	tmp/              work folders of builds under way; emptied on open
//
// Everything is written to tmp/ first and renamed into place, so an
// interrupted build never leaves a half-written layer or record behind.
package storage
