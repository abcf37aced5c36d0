package layer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/testlayout"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/layer"
)

// badEntries are archives the unpack policy refuses, keyed by the entry
// that must be named. Each puts a file beside the bad entry, so that a
// whiteout applied to its own folder (or the one above) would delete it.
func badEntries() map[string][]*tar.Header {
	dir := &tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755}
	keep := &tar.Header{Typeflag: tar.TypeReg, Name: "d/keep", Mode: 0o644}
	return map[string][]*tar.Header{
		"../../x":   {{Typeflag: tar.TypeReg, Name: "../../x", Mode: 0o644}},
		"d/../../x": {dir, {Typeflag: tar.TypeReg, Name: "d/../../x", Mode: 0o644}},
		"hl":        {{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../../etc/passwd"}},
		"d/.wh..":   {dir, keep, {Typeflag: tar.TypeReg, Name: "d/.wh..", Mode: 0o644}},
		"d/.wh...":  {dir, keep, {Typeflag: tar.TypeReg, Name: "d/.wh...", Mode: 0o644}},
		"d/.wh.":    {dir, keep, {Typeflag: tar.TypeReg, Name: "d/.wh.", Mode: 0o644}},
		".wh..":     {dir, keep, {Typeflag: tar.TypeReg, Name: ".wh..", Mode: 0o644}},
	}
}

func tarOf(t *testing.T, hs []*tar.Header) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOneUnpackPolicy unpacks every bad archive as each kind of source: a
// layer blob unpacked directly, a rootfs tarball base and a layer of an
// OCI layout base. All must refuse it with ErrUnsafeArchive, naming the
// entry; before, a layout base clamped "../../x" into its rootfs, and the
// whiteouts deleted their folder or failed with "restore chown metadata".
func TestOneUnpackPolicy(t *testing.T) {
	ctx := context.Background()
	rootless := os.Geteuid() != 0
	opts := layer.UnpackOptions{Rootless: rootless, UserXattr: rootless}
	check := func(t *testing.T, kind, entry string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: the entry %q was accepted", kind, entry)
			return
		}
		if !errors.Is(err, layer.ErrUnsafeArchive) || !strings.Contains(err.Error(), `"`+entry+`"`) {
			t.Errorf("%s: %v; want ErrUnsafeArchive naming the entry %q", kind, err, entry)
		}
	}
	for entry, hs := range badEntries() {
		t.Run(entry, func(t *testing.T) {
			raw := tarOf(t, hs)
			work := t.TempDir()
			blob := filepath.Join(work, "layer.tar")
			if err := os.WriteFile(blob, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(work, "box", "dest")
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			check(t, "layer", entry, layer.Unpack(ctx, blob, v1.MediaTypeImageLayer, dest, opts))
			if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 1 {
				t.Errorf("layer: the unpack wrote beside its folder: %v", ents)
			}

			st, err := storage.Open(ctx, filepath.Join(work, "store"), storage.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			d := digest.FromBytes(raw)
			if err := fetch.IngestFile(ctx, st, blob, d); err != nil {
				t.Fatal(err)
			}
			_, err = fetch.TarballImage(ctx, st, blob, d)
			check(t, "tarball base", entry, err)

			oci := filepath.Join(work, "oci")
			testlayout.Write(t, oci, "bad", nil, testlayout.Layer{Blob: raw, MediaType: v1.MediaTypeImageLayer, DiffID: d})
			img, err := st.ImportLayout(ctx, oci, "bad")
			if err != nil {
				t.Fatalf("layout base: %v", err)
			}
			_, err = st.Unpacked(ctx, img.Manifest.Layers[0], opts)
			check(t, "layout base", entry, err)
		})
	}
}

// An absolute name is the same path inside the rootfs, as docker,
// containerd and umoci read it: ko writes its images that way
// (/ko-app/NAME), and refusing it would refuse every image built with ko.
func TestAbsoluteNamesLandInsideTheRootfs(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "/ko-app/hello", Typeflag: tar.TypeReg},
		{Name: "/var/run/ko/", Typeflag: tar.TypeDir},
		{Name: "/usr/bin/x", Typeflag: tar.TypeLink, Linkname: "/usr/bin/y"},
	} {
		if err := layer.CheckEntry(h); err != nil {
			t.Errorf("CheckEntry(%q): %v", h.Name, err)
		}
	}
	// And unpacked, they land inside the rootfs.
	raw := tarOf(t, []*tar.Header{
		{Name: "/ko-app/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "/ko-app/hello", Typeflag: tar.TypeReg, Mode: 0o755},
	})
	work := t.TempDir()
	blob := filepath.Join(work, "layer.tar")
	if err := os.WriteFile(blob, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(work, "box", "dest")
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	rootless := os.Geteuid() != 0
	if err := layer.Unpack(context.Background(), blob, v1.MediaTypeImageLayer, dest, layer.UnpackOptions{Rootless: rootless, UserXattr: rootless}); err != nil {
		t.Fatalf("unpack of a layer with absolute names: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "ko-app", "hello")); err != nil {
		t.Errorf("/ko-app/hello is not at ko-app/hello in the rootfs: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 1 {
		t.Errorf("the unpack wrote beside its folder: %v", ents)
	}
	for _, h := range []*tar.Header{
		{Name: "/../x", Typeflag: tar.TypeReg},
		{Name: "/a/../../x", Typeflag: tar.TypeReg},
		{Name: "l", Typeflag: tar.TypeLink, Linkname: "/../../etc/shadow"},
	} {
		if err := layer.CheckEntry(h); err == nil {
			t.Errorf("CheckEntry(%q -> %q) accepted an entry that climbs out", h.Name, h.Linkname)
		}
	}
}
