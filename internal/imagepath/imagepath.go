// Package imagepath holds the paths inside an image at which strata
// shows a build step what is not part of the image: dsl documents them to
// users (dsl.SecretDir, dsl.ImportDir) and the sandbox mounts them.
package imagepath

// Secrets is the folder where a run step reads its secrets, by name.
const Secrets = "/run/secrets"

// Imports is the folder where a run step reads the sources of its image's
// imports, read-only, by their base name; where imports share a base name,
// the last of them.
const Imports = "/.strata/imports"
