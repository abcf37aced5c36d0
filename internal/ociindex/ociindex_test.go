package ociindex

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

type blobs map[digest.Digest][]byte

func (b blobs) put(t *testing.T, mediaType string, v any) v1.Descriptor {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(raw)
	b[d] = raw
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(raw))}
}

func (b blobs) open(d v1.Descriptor) (io.ReadCloser, error) {
	raw, ok := b[d.Digest]
	if !ok {
		return nil, errors.New("no such blob")
	}
	return io.NopCloser(bytes.NewReader(raw)), nil
}

func TestResolve(t *testing.T) {
	b := blobs{}
	manifest := func(arch, variant string) v1.Descriptor {
		cfg := b.put(t, v1.MediaTypeImageConfig, v1.Image{Platform: v1.Platform{OS: "linux", Architecture: arch}})
		d := b.put(t, v1.MediaTypeImageManifest, v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: cfg})
		d.Platform = &v1.Platform{OS: "linux", Architecture: arch, Variant: variant}
		return d
	}
	amd, arm := manifest("amd64", ""), manifest("arm64", "v8")
	attestation := b.put(t, v1.MediaTypeImageManifest, v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: v1.Descriptor{Digest: digest.FromString("x")}})
	attestation.Platform = &v1.Platform{OS: "unknown", Architecture: "unknown"}
	flat := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{attestation, amd, arm}})
	nested := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{flat}})
	twice := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{nested}})
	lying := flat
	lying.Size = 10

	for _, tc := range []struct {
		name     string
		from     v1.Descriptor
		platform string
		want     digest.Digest
		err      string
	}{
		{"a manifest is itself", amd, "linux/arm64", amd.Digest, ""},
		{"flat, amd64", flat, "linux/amd64", amd.Digest, ""},
		{"flat, arm64 matches any variant", flat, "linux/arm64", arm.Digest, ""},
		{"flat, arm64/v8", flat, "linux/arm64/v8", arm.Digest, ""},
		{"nested", nested, "linux/arm64", arm.Digest, ""},
		{"nested twice", twice, "linux/amd64", amd.Digest, ""},
		{"no such platform", twice, "linux/s390x", "", "no image for linux/s390x"},
		{"a size that lies", lying, "linux/amd64", "", "claims 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			got, raw, err := Resolve(tc.from, p, b.open)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Digest != tc.want {
				t.Fatalf("got %s, %v; want %s", got.Digest, err, tc.want)
			}
			if digest.FromBytes(raw) != got.Digest {
				t.Errorf("the manifest bytes returned are not those of %s", got.Digest)
			}
		})
	}
}

// TestResolveDepthLimit: a chain of indexes deeper than any real layout
// has ends in an error naming the limit.
func TestResolveDepthLimit(t *testing.T) {
	b := blobs{}
	d := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{}})
	for range maxDepth + 2 {
		d = b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{d}})
	}
	p, _ := ParsePlatform("linux/amd64")
	if _, _, err := Resolve(d, p, b.open); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Fatalf("err = %v, want the nesting limit", err)
	}
}

// TestResolveWideChain: an index listing the same child index many times
// at every level is searched once per distinct index.
func TestResolveWideChain(t *testing.T) {
	b := blobs{}
	reads := 0
	open := func(d v1.Descriptor) (io.ReadCloser, error) { reads++; return b.open(d) }
	d := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{}})
	for range maxDepth - 1 {
		list := make([]v1.Descriptor, 100)
		for i := range list {
			list[i] = d
		}
		d = b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: list})
	}
	p, _ := ParsePlatform("linux/amd64")
	if _, _, err := Resolve(d, p, open); err == nil {
		t.Fatal("resolved an index with no image")
	}
	if reads > maxDepth+1 {
		t.Errorf("%d reads for %d distinct indexes", reads, maxDepth)
	}
}

// An index of one image that names no platform resolves to that image;
// one of several such images is refused (which one is meant is unknown).
func TestResolveIndexWithoutPlatforms(t *testing.T) {
	b := blobs{}
	cfg := b.put(t, v1.MediaTypeImageConfig, v1.Image{})
	m1 := b.put(t, v1.MediaTypeImageManifest, v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: cfg})
	m2 := b.put(t, v1.MediaTypeImageManifest, v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: cfg, Annotations: map[string]string{"n": "2"}})
	one := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{m1}})
	two := b.put(t, v1.MediaTypeImageIndex, v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{m1, m2}})
	want := v1.Platform{OS: "linux", Architecture: "amd64"}
	if d, _, err := Resolve(one, want, b.open); err != nil || d.Digest != m1.Digest {
		t.Errorf("index of one platformless image: %v, %v; want %s", d.Digest, err, m1.Digest)
	}
	if _, _, err := Resolve(two, want, b.open); err == nil {
		t.Error("index of two platformless images resolved to one of them")
	}
}

// Several index.json entries under one tag (one per platform): the one of
// the wanted platform, else the first.
func TestTagged(t *testing.T) {
	tag := map[string]string{v1.AnnotationRefName: "t"}
	amd := v1.Descriptor{Digest: digest.FromString("amd"), Annotations: tag, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}
	arm := v1.Descriptor{Digest: digest.FromString("arm"), Annotations: tag, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}
	other := v1.Descriptor{Digest: digest.FromString("o"), Annotations: map[string]string{v1.AnnotationRefName: "o"}}
	list := []v1.Descriptor{other, arm, amd}
	if d, ok := Tagged(list, "t", v1.Platform{OS: "linux", Architecture: "amd64"}); !ok || d.Digest != amd.Digest {
		t.Errorf("Tagged amd64 = %s, %v", d.Digest, ok)
	}
	if d, ok := Tagged(list, "t", v1.Platform{OS: "linux", Architecture: "s390x"}); !ok || d.Digest != arm.Digest {
		t.Errorf("Tagged s390x = %s, %v; want the first entry", d.Digest, ok)
	}
	if _, ok := Tagged(list, "nope", v1.Platform{}); ok {
		t.Error("Tagged found a tag that is not there")
	}
}
