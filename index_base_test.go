package strata

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/testlayout"
	"github.com/strata-build/strata/storage"
)

// indexLayout writes an OCI layout as `skopeo copy --all` and buildx
// write them: the tag "flat" names an index of a linux/amd64 and a
// linux/arm64 image, the tag "nested" an index whose only entry (without
// a platform) is that index. Each platform's image has one layer holding
// /arch with its architecture's name, and this machine's also the host's
// static busybox as /bin/sh when there is one, so steps can run on it; it
// returns the layer digest of each.
func indexLayout(t *testing.T, dir string) map[string]digest.Digest {
	t.Helper()
	put := func(b []byte) v1.Descriptor { return testlayout.Put(t, dir, b) }
	putJSON := func(mediaType string, v any) v1.Descriptor {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		d := put(b)
		d.MediaType = mediaType
		return d
	}
	layers := map[string]digest.Digest{}
	var entries []v1.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		tw.WriteHeader(&tar.Header{Name: "arch", Mode: 0o644, Size: int64(len(arch)), Typeflag: tar.TypeReg})
		tw.Write([]byte(arch))
		if bb, err := os.ReadFile("/bin/busybox"); err == nil && arch == runtime.GOARCH {
			tw.WriteHeader(&tar.Header{Name: "bin/", Mode: 0o755, Typeflag: tar.TypeDir})
			tw.WriteHeader(&tar.Header{Name: "bin/sh", Mode: 0o755, Size: int64(len(bb)), Typeflag: tar.TypeReg})
			tw.Write(bb)
		}
		tw.Close()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		l := put(gz.Bytes())
		l.MediaType = v1.MediaTypeImageLayerGzip
		layers[arch] = l.Digest
		cfg := putJSON(v1.MediaTypeImageConfig, v1.Image{
			Platform: v1.Platform{OS: "linux", Architecture: arch},
			RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw.Bytes())}},
		})
		m := putJSON(v1.MediaTypeImageManifest, v1.Manifest{Versioned: ispec.Versioned{SchemaVersion: 2},
			MediaType: v1.MediaTypeImageManifest, Config: cfg, Layers: []v1.Descriptor{l}})
		m.Platform = &v1.Platform{OS: "linux", Architecture: arch}
		if arch == "arm64" {
			m.Platform.Variant = "v8"
		}
		entries = append(entries, m)
	}
	index := func(list ...v1.Descriptor) v1.Descriptor {
		return putJSON(v1.MediaTypeImageIndex, v1.Index{Versioned: ispec.Versioned{SchemaVersion: 2},
			MediaType: v1.MediaTypeImageIndex, Manifests: list})
	}
	flat := index(entries...)
	nested := index(flat)
	flat.Annotations = map[string]string{v1.AnnotationRefName: "flat"}
	nested.Annotations = map[string]string{v1.AnnotationRefName: "nested"}
	top, _ := json.Marshal(v1.Index{Versioned: ispec.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{flat, nested}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return layers
}

// TestBuildOnIndexLayout builds on a layout tag that names an image index
// (flat, and an index inside an index): the build must use this machine's
// image of it, not fail with "changed during the build (was the index,
// now a manifest)".
func TestBuildOnIndexLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("builds need root here")
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the test layout has amd64 and arm64 images")
	}
	ctx := context.Background()
	base := t.TempDir()
	layers := indexLayout(t, base)
	for _, tag := range []string{"flat", "nested"} {
		t.Run(tag, func(t *testing.T) {
			out := t.TempDir()
			img := dsl.New("on-"+tag).From(dsl.Layout(base, tag)).Env("TAG", tag)
			if _, err := os.Stat("/bin/busybox"); err == nil {
				// A step unpacks the base (its diff IDs checked) and
				// sees this machine's image of the index.
				img = img.Run(`test "$(cat /arch)" = ` + runtime.GOARCH)
			}
			opts := Options{Store: filepath.Join(out, "store"), Layout: filepath.Join(out, "oci"), Out: io.Discard}
			if _, err := BuildWith(ctx, opts, img); err != nil {
				t.Fatalf("build on the index tagged %q: %v", tag, err)
			}
			l, err := storage.OpenLayout(opts.Layout)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			desc, err := l.Resolve(ctx, "on-"+tag)
			if err != nil {
				t.Fatal(err)
			}
			var m v1.Manifest
			if err := l.ReadJSON(ctx, desc.Digest, &m); err != nil {
				t.Fatal(err)
			}
			if len(m.Layers) == 0 || m.Layers[0].Digest != layers[runtime.GOARCH] {
				t.Errorf("built on %v, want the %s image's layer %s", m.Layers, runtime.GOARCH, layers[runtime.GOARCH])
			}
		})
	}
}
