package fetch_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/testlayout"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/layer"
)

// TestLayoutClaimsChecked reads layout bases whose descriptors lie about
// sizes (10 bytes, 1 TiB: both were accepted before) or whose config
// lies about its layer's diff ID (copied into the built image before).
// Each must fail naming the blob and the claim.
func TestLayoutClaimsChecked(t *testing.T) {
	ctx := context.Background()
	raw := makeTar(t, []entry{{name: "etc/os-release", body: "ID=test\n"}})
	blob := gzipped(t, raw)
	good := testlayout.Layer{Blob: blob, MediaType: v1.MediaTypeImageLayerGzip, DiffID: digest.FromBytes(raw)}
	layerDigest := digest.FromBytes(blob).String()
	const tib = 1 << 40
	sizes := map[string]struct {
		edit  testlayout.Edit
		blame string // the blob the error must name ("manifest": the manifest's)
	}{
		"index.json entry of 10 bytes": {func(_ *v1.Manifest, e *v1.Descriptor) { e.Size = 10 }, "manifest"},
		"index.json entry of 1 TiB":    {func(_ *v1.Manifest, e *v1.Descriptor) { e.Size = tib }, "manifest"},
		"layer of 10 bytes":            {func(m *v1.Manifest, _ *v1.Descriptor) { m.Layers[0].Size = 10 }, layerDigest},
		"layer of 1 TiB":               {func(m *v1.Manifest, _ *v1.Descriptor) { m.Layers[0].Size = tib }, layerDigest},
		"config of 10 bytes":           {func(m *v1.Manifest, _ *v1.Descriptor) { m.Config.Size = 10 }, "config"},
		"config of 1 TiB":              {func(m *v1.Manifest, _ *v1.Descriptor) { m.Config.Size = tib }, "config"},
	}
	for name, tc := range sizes {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var cfg string
			entry := testlayout.Write(t, filepath.Join(dir, "oci"), "x", func(m *v1.Manifest, e *v1.Descriptor) {
				cfg = m.Config.Digest.String()
				tc.edit(m, e)
			}, good)
			blame := tc.blame
			switch blame {
			case "manifest":
				blame = entry.Digest.String()
			case "config":
				blame = cfg
			}
			st := openStore(t, filepath.Join(dir, "store"))
			_, err := st.ImportLayout(ctx, filepath.Join(dir, "oci"), "x")
			if err == nil || !strings.Contains(err.Error(), blame) || !strings.Contains(err.Error(), "claims") {
				t.Fatalf("err = %v; want the lie of blob %s named", err, blame)
			}
		})
	}

	t.Run("diff_ids", func(t *testing.T) {
		dir := t.TempDir()
		st := openStore(t, filepath.Join(dir, "store"))
		lie := good
		lie.DiffID = digest.FromString("another layer")
		testlayout.Write(t, filepath.Join(dir, "lie"), "x", nil, lie)
		img, err := st.ImportLayout(ctx, filepath.Join(dir, "lie"), "x")
		if err != nil {
			t.Fatal(err)
		}
		checkDiffIDError(t, "verify before any unpack", st.VerifyDiffIDs(ctx, img), layerDigest)
		_, err = st.UnpackBase(ctx, img, layer.UnpackOptions{})
		checkDiffIDError(t, "unpack", err, layerDigest)

		// Once the honest image's layer is unpacked (and its diff ID
		// measured), the lie is caught without reading the blob again.
		testlayout.Write(t, filepath.Join(dir, "honest"), "x", nil, good)
		honest, err := st.ImportLayout(ctx, filepath.Join(dir, "honest"), "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.UnpackBase(ctx, honest, layer.UnpackOptions{}); err != nil {
			t.Fatalf("the honest image: %v", err)
		}
		if err := st.VerifyDiffIDs(ctx, honest); err != nil {
			t.Fatalf("the honest image: %v", err)
		}
		_, err = st.UnpackBase(ctx, img, layer.UnpackOptions{})
		checkDiffIDError(t, "unpack of a layer already unpacked", err, layerDigest)
		checkDiffIDError(t, "verify after the unpack", st.VerifyDiffIDs(ctx, img), layerDigest)
	})
}

func checkDiffIDError(t *testing.T, what string, err error, blob string) {
	t.Helper()
	if !errors.Is(err, layer.ErrDiffID) || !strings.Contains(err.Error(), blob) || !strings.Contains(err.Error(), "diff_ids") {
		t.Errorf("%s: err = %v; want ErrDiffID naming blob %s and the config's diff_ids", what, err, blob)
	}
}

// rawManifest is a manifest pushed as is, lies included.
type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error) { return r, nil }
func (r rawManifest) MediaType() (ggcrtypes.MediaType, error) {
	return ggcrtypes.OCIManifestSchema1, nil
}

// TestPullClaimsChecked pulls images whose manifest lies about a layer's
// size or whose config lies about its diff ID from a registry.
func TestPullClaimsChecked(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	raw := makeTar(t, []entry{{name: "etc/os-release", body: "ID=test\n"}})
	blob := gzipped(t, raw)
	repo, err := name.NewRepository(reg.host()+"/claims", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	putBlob := func(b []byte) v1.Descriptor {
		if err := remote.WriteLayer(repo, static.NewLayer(b, ggcrtypes.OCILayer)); err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	pushLie := func(tag string, size int64, diffID digest.Digest) digest.Digest {
		cfgRaw, _ := json.Marshal(v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
			RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}})
		cfg := putBlob(cfgRaw)
		cfg.MediaType = v1.MediaTypeImageConfig
		l := putBlob(blob)
		l.MediaType = v1.MediaTypeImageLayerGzip
		l.Size = size
		m, _ := json.Marshal(v1.Manifest{Versioned: ispec.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
			Config: cfg, Layers: []v1.Descriptor{l}})
		if err := remote.Put(repo.Tag(tag), rawManifest(m)); err != nil {
			t.Fatal(err)
		}
		return digest.FromBytes(m)
	}
	layerDigest := digest.FromBytes(blob).String()
	for _, size := range []int64{10, 1 << 40} {
		st := openStore(t, t.TempDir())
		d := pushLie("size", size, digest.FromBytes(raw))
		_, err := fetch.Pull(ctx, st, reg.host()+"/claims:size", d, insecure)
		if err == nil || !strings.Contains(err.Error(), layerDigest) || !strings.Contains(err.Error(), "claims") {
			t.Errorf("layer of %d bytes: err = %v; want the lie of blob %s named", size, err, layerDigest)
		}
	}
	st := openStore(t, t.TempDir())
	d := pushLie("diffid", int64(len(blob)), digest.FromString("another layer"))
	img, err := fetch.Pull(ctx, st, reg.host()+"/claims:diffid", d, insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.UnpackBase(ctx, img, layer.UnpackOptions{})
	checkDiffIDError(t, "unpack", err, layerDigest)
}
