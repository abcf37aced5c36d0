// Package ociindex resolves a descriptor that names an image index (what
// `skopeo copy --all` and buildx write under a tag) to the manifest of one
// platform, through nested indexes.
//
// Evaluation (dsl, which puts a layout base's manifest digest in the cache
// key) and the build (storage, which reads that base) both resolve through
// Resolve, so the digest one computes is the digest the other finds, and
// the build's "changed during the build" check compares a manifest with a
// manifest. It checks every document it reads against its descriptor's
// digest and size, since a layout is outside input.
package ociindex

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxDocumentSize bounds a manifest or index read: they are small JSON
// documents, and a descriptor claiming more is hostile or broken.
const MaxDocumentSize = 8 << 20

// maxDepth bounds nesting: real layouts nest an index once or twice, and
// a hostile chain of indexes must end in an error, not in reading every
// link of it.
const maxDepth = 8

// dockerManifestList is Docker's name for an index; its JSON has the OCI
// shape.
const dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// ParsePlatform parses "os/arch[/variant]"; empty means linux and this
// machine's architecture, which is what a build on this machine runs.
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("platform %q is not os/arch[/variant]", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// matches reports whether an index entry's platform is want. A want
// without a variant accepts any variant, as docker and containerd do for
// "linux/arm64" against "linux/arm64/v8".
func matches(have *v1.Platform, want v1.Platform) bool {
	return have != nil && have.OS == want.OS && have.Architecture == want.Architecture &&
		(want.Variant == "" || have.Variant == want.Variant)
}

// platformString is "os/arch[/variant]" of p.
func platformString(p v1.Platform) string {
	return strings.TrimSuffix(p.OS+"/"+p.Architecture+"/"+p.Variant, "/")
}

// Choose picks the entry of platform want from an index's list.
func Choose(list []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var have []string
	for _, d := range list {
		if d.Platform == nil {
			continue
		}
		have = append(have, platformString(*d.Platform))
		if matches(d.Platform, want) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s (it has: %s)", platformString(want), strings.Join(have, ", "))
}

// Tagged returns the entry of a layout's index.json tagged tag. Some
// tools tag one entry per platform under one tag: then the entry of
// platform want is chosen, else the first, so that evaluation and the
// build pick the same one.
func Tagged(list []v1.Descriptor, tag string, want v1.Platform) (v1.Descriptor, bool) {
	var same []v1.Descriptor
	for _, d := range list {
		if d.Annotations[v1.AnnotationRefName] == tag {
			same = append(same, d)
		}
	}
	switch len(same) {
	case 0:
		return v1.Descriptor{}, false
	case 1:
		return same[0], true
	}
	if d, err := Choose(same, want); err == nil {
		return d, true
	}
	return same[0], true
}

// Open opens the blob d names; Resolve reads no more of it than its
// descriptor's size and one byte, and checks its size and digest.
type Open func(d v1.Descriptor) (io.ReadCloser, error)

// Resolve follows d while it names an index, choosing the entry of
// platform want at each level, and returns the descriptor of the manifest
// it ends at, with the manifest's bytes (read and checked once, here). An
// index entry without a platform that is itself an index (how nested
// indexes are usually listed) is searched too. d itself is returned when
// it names a manifest.
func Resolve(d v1.Descriptor, want v1.Platform, open Open) (v1.Descriptor, []byte, error) {
	return resolve(d, want, open, 0, map[digest.Digest]bool{})
}

// document is the fields of a manifest or an index that tell them apart.
type document struct {
	MediaType string          `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Manifests []v1.Descriptor `json:"manifests"`
}

// errSeen is resolve's answer for an index it already searched (and
// reported on) in this Resolve.
var errSeen = errors.New("index already searched")

// resolve is Resolve at nesting depth; seen holds the indexes already
// searched, so that a hostile index listing one child many times at every
// level costs one read per distinct index, not one per path to it.
func resolve(d v1.Descriptor, want v1.Platform, open Open, depth int, seen map[digest.Digest]bool) (v1.Descriptor, []byte, error) {
	if depth > maxDepth {
		return v1.Descriptor{}, nil, fmt.Errorf("index %s: indexes nest more than %d deep", d.Digest, maxDepth)
	}
	if seen[d.Digest] {
		return v1.Descriptor{}, nil, errSeen
	}
	seen[d.Digest] = true
	b, err := ReadChecked(d, open)
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if !isIndex(d.MediaType, doc) {
		if doc.Config == nil {
			return v1.Descriptor{}, nil, fmt.Errorf("blob %s is neither a manifest nor an index (media type %q)", d.Digest, d.MediaType)
		}
		return d, b, nil
	}
	if child, err := Choose(doc.Manifests, want); err == nil {
		c, m, err := resolve(child, want, open, depth+1, seen)
		if err != nil {
			return v1.Descriptor{}, nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		return c, m, nil
	}
	var have []string
	var bare []v1.Descriptor // entries that say nothing of their platform
	for _, e := range doc.Manifests {
		switch {
		case e.Platform != nil:
			have = append(have, platformString(*e.Platform))
		case e.MediaType != v1.MediaTypeImageIndex && e.MediaType != dockerManifestList:
			bare = append(bare, e)
		case e.MediaType == v1.MediaTypeImageIndex || e.MediaType == dockerManifestList:
			c, m, err := resolve(e, want, open, depth+1, seen)
			if err == nil {
				return c, m, nil
			}
			if err != errSeen {
				have = append(have, "("+err.Error()+")")
			}
		}
	}
	if len(have) == 0 && len(bare) == 1 {
		// An index of one image that does not name its platform (some
		// tools write them): that image is the one meant.
		c, m, err := resolve(bare[0], want, open, depth+1, seen)
		if err != nil {
			return v1.Descriptor{}, nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		return c, m, nil
	}
	return v1.Descriptor{}, nil, fmt.Errorf("index %s: no image for %s (it has: %s)", d.Digest, platformString(want), strings.Join(have, ", "))
}

func isIndex(mediaType string, doc document) bool {
	switch {
	case mediaType == v1.MediaTypeImageIndex || mediaType == dockerManifestList:
		return true
	case doc.MediaType == v1.MediaTypeImageIndex || doc.MediaType == dockerManifestList:
		return true
	}
	return doc.Manifests != nil && doc.Config == nil
}

// ReadChecked reads the small JSON blob d through open and checks it
// against both claims of its descriptor: a size that is not the blob's
// (10 bytes or 1 TiB) is refused before anything is trusted, as is a
// digest that does not match.
func ReadChecked(d v1.Descriptor, open Open) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("bad digest %q: %w", d.Digest, err)
	}
	if d.Size < 0 || d.Size > MaxDocumentSize {
		return nil, fmt.Errorf("blob %s: its descriptor claims %d bytes, more than a manifest or index may have (%d)", d.Digest, d.Size, MaxDocumentSize)
	}
	r, err := open(d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// One byte more than claimed is enough to tell a longer blob.
	b, err := io.ReadAll(io.LimitReader(r, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s has %d bytes but its descriptor claims %d", d.Digest, len(b), d.Size)
	}
	if got := d.Digest.Algorithm().FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s has digest %s (damaged)", d.Digest, got)
	}
	return b, nil
}

// LayoutBlobPath is where an OCI layout at dir keeps blob d (a validated
// digest).
func LayoutBlobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}
