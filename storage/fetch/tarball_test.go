package fetch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/fetch"
	"github.com/strata-build/strata/storage/layer"
)

func zstded(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

// ingest writes b to a file and takes it into the store as a tarball base.
type ingested struct {
	Store *storage.Store
	Image *storage.BaseImage
}

func ingest(t *testing.T, dir string, b []byte) (*ingested, error) {
	t.Helper()
	st := openStore(t, filepath.Join(dir, "store"))
	file := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(b)
	if err := fetch.IngestFile(context.Background(), st, file, d); err != nil {
		t.Fatal(err)
	}
	img, err := fetch.TarballImage(context.Background(), st, file, d)
	return &ingested{Store: st, Image: img}, err
}

func TestTarballCompressionDetected(t *testing.T) {
	raw := makeTar(t, []entry{{name: "./", typ: '5'}, {name: "./etc/", typ: '5'}, {name: "./etc/os-release", body: "ID=test\n"}})
	for _, tc := range []struct {
		name, mediaType string
		blob            []byte
	}{
		{"plain", v1.MediaTypeImageLayer, raw},
		{"gzip", v1.MediaTypeImageLayerGzip, gzipped(t, raw)},
		{"zstd", v1.MediaTypeImageLayerZstd, zstded(t, raw)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ingest(t, t.TempDir(), tc.blob)
			if err != nil {
				t.Fatal(err)
			}
			l := r.Image.Manifest.Layers[0]
			if l.MediaType != tc.mediaType {
				t.Errorf("media type %s, want %s", l.MediaType, tc.mediaType)
			}
			if got := r.Image.Config.RootFS.DiffIDs[0]; got != digest.FromBytes(raw) {
				t.Errorf("diff ID %s, want the digest of the plain tar %s", got, digest.FromBytes(raw))
			}
			dir, err := r.Store.Unpacked(context.Background(), l, layer.UnpackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "etc/os-release")); string(b) != "ID=test\n" {
				t.Errorf("unpacked os-release: %q", b)
			}
		})
	}
}

func TestTarballRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		naming  string
	}{
		{"dotdot", []entry{{name: "ok"}, {name: "../../escaped", body: "x"}}, `"../../escaped"`},
		{"inner dotdot", []entry{{name: "a/../../escaped", body: "x"}}, `"a/../../escaped"`},
		{"absolute climbing", []entry{{name: "/../etc/passwd", body: "x"}}, `"/../etc/passwd"`},
		{"hardlink out", []entry{{name: "hl", typ: '1', link: "../../../etc/shadow"}}, `"../../../etc/shadow"`},
		{"hardlink absolute climbing", []entry{{name: "hl", typ: '1', link: "/../etc/shadow"}}, `"/../etc/shadow"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ingest(t, t.TempDir(), gzipped(t, makeTar(t, tc.entries)))
			if !errors.Is(err, fetch.ErrUnsafeArchive) {
				t.Fatalf("err = %v, want ErrUnsafeArchive", err)
			}
			if !strings.Contains(err.Error(), tc.naming) {
				t.Errorf("error %q does not name %s", err, tc.naming)
			}
		})
	}
}

func TestTarballRefusesXZ(t *testing.T) {
	_, err := ingest(t, t.TempDir(), []byte("\xfd7zXZ\x00 not really"))
	if err == nil || !strings.Contains(err.Error(), "xz") {
		t.Fatalf("xz tarball: %v", err)
	}
}

func TestTarballLayerFollowsLayerType(t *testing.T) {
	raw := makeTar(t, []entry{{name: "./", typ: '5'}, {name: "./etc/", typ: '5'}, {name: "./etc/os-release", body: "ID=test\n"}})
	blob := zstded(t, raw)
	var first v1.Descriptor
	for i := range 2 {
		// A second store recompresses from scratch: same digest.
		r, err := ingest(t, t.TempDir(), blob)
		if err != nil {
			t.Fatal(err)
		}
		d := r.Image.Manifest.Layers[0].Digest
		same, err := fetch.TarballLayer(context.Background(), r.Store, d, layertype.TarZstd)
		if err != nil {
			t.Fatal(err)
		}
		if same.Digest != d {
			t.Errorf("zstd tarball as tar+zstd: got %s, want the tarball itself %s", same.Digest, d)
		}
		gz, err := fetch.TarballLayer(context.Background(), r.Store, d, layertype.TarGzip)
		if err != nil {
			t.Fatal(err)
		}
		if gz.MediaType != v1.MediaTypeImageLayerGzip || gz.Digest == d {
			t.Fatalf("as tar+gzip: got %+v", gz)
		}
		dir := t.TempDir()
		if err := layer.Unpack(context.Background(), r.Store.BlobPath(gz.Digest.String()), gz.MediaType, dir,
			layer.UnpackOptions{Digest: gz.Digest, DiffID: r.Image.Config.RootFS.DiffIDs[0], Rootless: os.Getuid() != 0}); err != nil {
			t.Fatalf("recompressed layer does not unpack to the tarball's diff ID: %v", err)
		}
		again, err := fetch.TarballLayer(context.Background(), r.Store, d, layertype.TarGzip)
		if err != nil || again.Digest != gz.Digest || again.Size != gz.Size {
			t.Fatalf("second call: %+v, %v; want %+v", again, err, gz)
		}
		if i == 0 {
			first = gz
		} else if gz.Digest != first.Digest {
			t.Errorf("not reproducible: %s, then %s", first.Digest, gz.Digest)
		}
	}
}

// TestTarballScanRecordsDiffID checks that the diff ID the scan measured
// is what the store checks the base's claim against: verifying it reads
// the blob no more (here the blob is gone, and the check still passes).
func TestTarballScanRecordsDiffID(t *testing.T) {
	raw := makeTar(t, []entry{{name: "./", typ: '5'}, {name: "./f", body: "x"}})
	r, err := ingest(t, t.TempDir(), gzipped(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(r.Store.BlobPath(r.Image.Manifest.Layers[0].Digest.String())); err != nil {
		t.Fatal(err)
	}
	if err := r.Store.VerifyDiffIDs(context.Background(), r.Image); err != nil {
		t.Errorf("the scanned tarball's diff ID was not recorded: %v", err)
	}
}
