package dsl

import (
	"slices"
	"strings"

	"github.com/strata-build/strata/internal/imagepath"
)

// SecretSource says where a secret's value comes from at build time.
type SecretSource struct {
	// File is a host file (absolute), or Env an environment variable of
	// the strata process.
	File, Env string
}

// SecretFile reads a secret from a host file, relative to the folder of the
// calling Go file.
func SecretFile(path string) SecretSource { return SecretSource{File: resolve(caller(), path)} }

// SecretEnv reads a secret from an environment variable of the strata
// process.
func SecretEnv(name string) SecretSource { return SecretSource{Env: name} }

// Secret is a value the image's steps read during the build.
type Secret struct {
	Name   string
	Source SecretSource
	Pos    Pos
}

// SecretDir, /run/secrets, is where steps find secrets: SecretDir/NAME.
const SecretDir = imagepath.Secrets

// Secret makes a secret readable by this image's steps at
// /run/secrets/NAME. Its value is never written to a layer, the config, a
// log, a cache record or the cache key; a secret whose source is missing
// fails the build before any step runs.
func (i *Image) Secret(name string, src SecretSource) *Image {
	c := i.clone()
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		c.fail("Secret: invalid secret name %q", name)
		return c
	}
	if src.File == "" && src.Env == "" {
		c.fail("Secret %s: give dsl.SecretFile(path) or dsl.SecretEnv(name)", name)
		return c
	}
	c.secrets = append(c.secrets, Secret{Name: name, Source: src, Pos: c.lastEdit})
	return c
}

// Secrets returns the image's secrets.
func (i *Image) Secrets() []Secret { return slices.Clone(i.secrets) }
