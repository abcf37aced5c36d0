package fetch

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"

	"github.com/strata-build/strata/internal/flight"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// IngestFile copies the local file path into the store as the blob want
// (which evaluation computed from the same file); a file that changed in
// between fails instead of being used under the wrong digest.
func IngestFile(ctx context.Context, st *storage.Store, file string, want digest.Digest) error {
	if haveBlob(st, want) {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return putVerified(ctx, st, f, want, func(got digest.Digest) error {
		return fmt.Errorf("%s changed during the build (was %s, now %s): %w", file, want, got, ErrDigestMismatch)
	})
}

// tarballInfo is what the store remembers of a tarball after scanning it
// once: how it is compressed and the digest of its uncompressed content.
type tarballInfo struct {
	MediaType string        `json:"mediaType"`
	DiffID    digest.Digest `json:"diffID"`
}

// ErrUnsafeArchive is returned (wrapped) for a tarball with entries that
// would land outside the rootfs or are malformed whiteouts; it is the
// error of the unpack policy every layer follows (layer.CheckEntry).
var ErrUnsafeArchive = layer.ErrUnsafeArchive

// TarballImage returns a base image whose only layer is the rootfs tarball
// blob d (already in the store; see IngestFile and Download); source names
// the tarball in messages and the image's history. The first use scans the
// tarball: its compression (none, gzip or zstd) is detected from its
// content, its uncompressed digest computed, and an entry whose name or
// hard-link target climbs out of the rootfs ("../x", "/../x"; "/x" is "x"
// in the rootfs) fails the base
// with ErrUnsafeArchive, naming the entry. Symbolic links may point
// anywhere: they are resolved inside the rootfs when unpacked and when
// steps run.
func TarballImage(ctx context.Context, st *storage.Store, source string, d digest.Digest) (*storage.BaseImage, error) {
	info, err := tarballMeta(ctx, st, d)
	if err != nil {
		return nil, fmt.Errorf("tarball %s: %w", source, err)
	}
	fi, err := os.Stat(st.BlobPath(d.String()))
	if err != nil {
		return nil, err
	}
	layer := v1.Descriptor{MediaType: info.MediaType, Digest: d, Size: fi.Size()}
	cfg := v1.Image{
		Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{info.DiffID}},
		History:  []v1.History{{CreatedBy: "strata: rootfs tarball " + path.Base(source)}},
	}
	m := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Layers: []v1.Descriptor{layer}}
	m.SchemaVersion = 2
	return &storage.BaseImage{Manifest: m, Config: cfg, Descriptor: v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: d}, Source: "tarball " + source}, nil
}

func tarballMeta(ctx context.Context, st *storage.Store, d digest.Digest) (tarballInfo, error) {
	var info tarballInfo
	side := filepath.Join(st.Root, "tarballs", d.Encoded()+".json")
	if b, err := os.ReadFile(side); err == nil && json.Unmarshal(b, &info) == nil && info.DiffID != "" {
		return info, nil
	}
	info, err := scanTarball(ctx, st.BlobPath(d.String()))
	if err != nil {
		return info, err
	}
	// The scan measured the diff ID the base's config will claim: the
	// store need not decompress the tarball again to check it.
	if err := st.RecordDiffID(d, info.DiffID); err != nil {
		return info, err
	}
	b, _ := json.Marshal(info)
	if err := os.MkdirAll(filepath.Dir(side), 0o755); err != nil {
		return info, err
	}
	// Written whole then renamed, so an interrupted scan leaves nothing a
	// later build would trust.
	tmp := side + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return info, err
	}
	return info, os.Rename(tmp, side)
}

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	bzip2Magic = []byte("BZh")
)

// scanTarball detects the compression of the tarball at file, checks
// every entry and computes the digest of the uncompressed stream.
func scanTarball(ctx context.Context, file string) (tarballInfo, error) {
	var info tarballInfo
	f, err := os.Open(file)
	if err != nil {
		return info, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(layer.ReaderWithContext(ctx, f), 1<<20)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return info, fmt.Errorf("read gzip: %w", err)
		}
		defer zr.Close()
		r, info.MediaType = zr, v1.MediaTypeImageLayerGzip
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return info, fmt.Errorf("read zstd: %w", err)
		}
		defer zr.Close()
		r, info.MediaType = zr, v1.MediaTypeImageLayerZstd
	case bytes.HasPrefix(magic, xzMagic), bytes.HasPrefix(magic, bzip2Magic):
		return info, errors.New("is compressed with xz or bzip2: strata reads plain, gzip and zstd tarballs (recompress it, e.g. xz -dc x.tar.xz | zstd > x.tar.zst)")
	default:
		info.MediaType = v1.MediaTypeImageLayer
	}
	dg := digest.SHA256.Digester()
	tee := io.TeeReader(r, dg.Hash())
	tr := tar.NewReader(tee)
	entries := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				// The read was cut by the cancellation, not by the archive.
				return info, ctx.Err()
			}
			return info, fmt.Errorf("not a tar archive (entry %d): %w", entries+1, err)
		}
		entries++
		// The unpack would refuse it too, but only once a build got
		// there: the scan says so when the base is first read.
		if err := layer.CheckEntry(h); err != nil {
			return info, err
		}
	}
	if entries == 0 {
		return info, errors.New("holds no entries")
	}
	// The digest covers the whole stream, padding after the end marker
	// included, as the diff ID of a layer does.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return info, err
	}
	info.DiffID = dg.Digest()
	return info, nil
}

// TarballLayer returns the descriptor of the layer of the tarball base d
// (see TarballImage) encoded as the tar layer type t, so that an image
// built in t does not mix compressions (runtimes such as docker before 23
// and umoci 0.4 cannot read a zstd layer under gzip ones). A tarball
// already in t is its own layer; otherwise its tar stream is recompressed
// once (same diff ID, reproducible digest) and the result remembered next
// to the tarball's scan.
func TarballLayer(ctx context.Context, st *storage.Store, d digest.Digest, t layertype.Type) (v1.Descriptor, error) {
	info, err := tarballMeta(ctx, st, d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if info.MediaType == layer.MediaType(t) {
		fi, err := os.Stat(st.BlobPath(d.String()))
		if err != nil {
			return v1.Descriptor{}, err
		}
		return v1.Descriptor{MediaType: info.MediaType, Digest: d, Size: fi.Size()}, nil
	}
	side := filepath.Join(st.Root, "tarballs", d.Encoded()+"."+strings.ReplaceAll(string(t), "+", "-")+".json")
	// Images built in parallel on one tarball are tagged at once: the
	// first recompresses, the others wait and share what it made.
	for {
		v, err, _ := recompressions.Do(side, func() (any, error) {
			return recompress(ctx, st, d, info, t, side)
		})
		switch {
		case flight.CancelledElsewhere(ctx, err):
			continue // the image that recompressed was stopped; this one was not
		case err != nil:
			return v1.Descriptor{}, err
		}
		return v.(v1.Descriptor), nil
	}
}

// recompress writes the tarball d (scanned as info) as a layer of type t,
// unless an earlier build did and remembered it in the file side.
func recompress(ctx context.Context, st *storage.Store, d digest.Digest, info tarballInfo, t layertype.Type, side string) (v1.Descriptor, error) {
	var desc v1.Descriptor
	if b, err := os.ReadFile(side); err == nil && json.Unmarshal(b, &desc) == nil && desc.Digest.Validate() == nil && haveBlob(st, desc.Digest) {
		return desc, nil
	}
	tmp, err := os.CreateTemp(filepath.Join(st.Root, "tmp"), "recompress-")
	if err != nil {
		return v1.Descriptor{}, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	res, err := layer.Recompress(ctx, st.BlobPath(d.String()), info.MediaType, t, tmp.Name(), layer.WriteOptions{})
	if err != nil {
		return v1.Descriptor{}, err
	}
	if res.DiffID != info.DiffID {
		return v1.Descriptor{}, fmt.Errorf("recompressed as %s, its tar stream has digest %s, not %s (damaged blob?)", t, res.DiffID, info.DiffID)
	}
	dst := st.BlobPath(res.Digest.String())
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return v1.Descriptor{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return v1.Descriptor{}, err
	}
	desc = v1.Descriptor{MediaType: res.MediaType, Digest: res.Digest, Size: res.Size}
	b, _ := json.Marshal(desc)
	if err := os.WriteFile(side+".tmp", b, 0o644); err != nil {
		return v1.Descriptor{}, err
	}
	return desc, os.Rename(side+".tmp", side)
}

// recompressions runs one recompression per tarball and layer type at a
// time; its outcome depends on nothing else, so callers share it.
var recompressions singleflight.Group
