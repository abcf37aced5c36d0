package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	umoci "github.com/opencontainers/umoci/oci/layer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/overlayfs"
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Unpack extracts the layer blob at blobPath, of the given media type, into
// dest, an existing empty directory, in overlay-lower format: OCI whiteouts
// become char 0/0 nodes and opaque-dir xattrs, so dest can be used as an
// overlay lowerdir. Tar layers are applied as umoci's extractor applies
// them, keeping every entry (including through symlinks) inside dest: by
// umoci itself for whiteouts, names through links and rootless unpacks,
// by a faster extractor of the same semantics for the rest (extractor). An unknown or empty
// tar media type is resolved by the blob's magic bytes.
func Unpack(ctx context.Context, blobPath, mediaType, dest string, opts UnpackOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fi, err := os.Stat(dest); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("unpack layer: %s is not a directory", dest)
	}
	t, err := TypeOfMediaType(mediaType)
	if err != nil && mediaType != "" {
		return fmt.Errorf("unpack %s: %w", blobPath, err)
	}
	switch t {
	case layertype.Squashfs:
		return unpackSquashfs(ctx, blobPath, dest, opts)
	case layertype.Erofs:
		return unpackErofs(ctx, blobPath, dest, opts)
	}
	return unpackTar(ctx, blobPath, t, dest, opts)
}

// ErrDiffID is returned (wrapped) when a layer's uncompressed content is
// not what its diff ID claims.
var ErrDiffID = errors.New("diff ID mismatch")

// verifier hashes what is read through it, to check a blob's digest in the
// same pass that extracts it.
type verifier struct {
	want digest.Digest
	h    hash.Hash
}

func newVerifier(want digest.Digest) (*verifier, error) {
	if want == "" {
		return nil, nil
	}
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("expected layer digest: %w", err)
	}
	return &verifier{want: want, h: want.Algorithm().Hash()}, nil
}

func (v *verifier) check(blobPath string) error {
	if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
		return fmt.Errorf("layer blob %s has digest %s, expected %s", blobPath, got, v.want)
	}
	return nil
}

func unpackTar(ctx context.Context, blobPath string, t layertype.Type, dest string, opts UnpackOptions) (err error) {
	f, err := os.Open(blobPath)
	if err != nil {
		return fmt.Errorf("open layer blob: %w", err)
	}
	defer f.Close()
	return unpackTarFrom(ctx, f, blobPath, t, dest, opts)
}

// UnpackStream is Unpack for a tar layer (gzip, zstd or none, told by
// its first bytes) read from r as it arrives, such as one a build backend
// exports: no blob is written first. name says what r is, in errors.
func UnpackStream(ctx context.Context, r io.Reader, name, dest string, opts UnpackOptions) error {
	if fi, err := os.Stat(dest); err != nil {
		return fmt.Errorf("unpack layer: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("unpack layer: %s is not a directory", dest)
	}
	return unpackTarFrom(ctx, r, name, "", dest, opts)
}

// unpackTarFrom unpacks the tar layer blob read from f (blobPath names it
// in errors).
func unpackTarFrom(ctx context.Context, f io.Reader, blobPath string, t layertype.Type, dest string, opts UnpackOptions) (err error) {
	v, err := newVerifier(opts.Digest)
	if err != nil {
		return err
	}
	var diffHash hash.Hash
	if opts.DiffID != "" {
		if err := opts.DiffID.Validate(); err != nil {
			return fmt.Errorf("diff ID %q: %w", opts.DiffID, err)
		}
		diffHash = opts.DiffID.Algorithm().Hash()
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if t == "" {
		// Sniff: bases from odd registries may mislabel their layers.
		t = sniffType(br)
	}
	var raw io.Reader = ReaderWithContext(ctx, br)
	if v != nil {
		raw = io.TeeReader(raw, v.h)
	}

	var zr io.ReadCloser
	if t == layertype.TarGzip {
		// The read-ahead goroutine below decodes: pgzip's own would only
		// add a copy and a handoff.
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return fmt.Errorf("read gzip layer %s: %w", blobPath, err)
		}
		zr = gz
	} else if zr, err = decompress(raw, t, blobPath); err != nil {
		return err
	}
	// Decompressing and hashing the tar stream run ahead of the writes,
	// on the other cores.
	ahead := newReadAhead(zr, diffHash)
	// raw is the decoder's, and the decoder ahead's, until closeDecoder
	// returns: see decompress.
	decoderOpen := true
	closeDecoder := func() {
		if decoderOpen {
			decoderOpen = false
			ahead.Close()
			_ = zr.Close()
		}
	}
	defer closeDecoder()
	var r io.Reader = ahead

	var guard *spaceGuard
	if floor := opts.floor(); floor > 0 {
		guard = &spaceGuard{r: r, dir: dest, floor: floor}
		r = guard
	}
	err = extractTar(dest, r, &umoci.UnpackOptions{
		OnDiskFormat: umoci.OverlayfsRootfs{
			UserXattr:  opts.UserXattr,
			MapOptions: umoci.MapOptions{Rootless: opts.Rootless},
		},
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if guard != nil && guard.err != nil {
			err = guard.err
		}
		return fmt.Errorf("unpack layer %s into %s: %w", blobPath, dest, err)
	}
	if diffHash != nil {
		// The tar end marker may precede padding: hash the whole stream.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("read layer blob %s: %w", blobPath, err)
		}
		if got := digest.NewDigest(opts.DiffID.Algorithm(), diffHash); got != opts.DiffID {
			return fmt.Errorf("layer %s unpacks to diff ID %s, not the expected %s: %w", blobPath, got, opts.DiffID, ErrDiffID)
		}
	}
	if v != nil {
		// The tar end marker may precede padding or the compressor's
		// trailer: hash the whole blob. The decoder may still be reading
		// raw ahead of what it handed out, so it is stopped first: the
		// bytes it took were hashed as it read them, the rest are read
		// here, each once and in order.
		closeDecoder()
		if _, err := io.Copy(io.Discard, raw); err != nil {
			return fmt.Errorf("read layer blob %s: %w", blobPath, err)
		}
		return v.check(blobPath)
	}
	return nil
}

// extractTar applies the tar stream r to dest entry by entry, as umoci's
// UnpackLayer does, but puts every entry through CheckEntry first: umoci
// would clamp a "../x" into dest and apply a malformed whiteout to the
// folder holding it, where a rootfs tarball's scan refuses both. As root,
// the entries of an ordinary layer take the extractor's fast path (see
// extractor); rootless unpacks, which umoci maps, go through umoci alone.
func extractTar(dest string, r io.Reader, opts *umoci.UnpackOptions) error {
	if opts.MapOptions().Rootless {
		te := umoci.NewTarExtractor(opts)
		return readEntries(r, func(h *tar.Header, r io.Reader) error { return te.UnpackEntry(dest, h, r) })
	}
	x, err := newExtractor(dest, opts)
	if err != nil {
		return err
	}
	defer x.close()
	if err := readEntries(r, x.entry); err != nil {
		return err
	}
	return x.finish()
}

func readEntries(r io.Reader, apply func(h *tar.Header, r io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read next entry: %w", err)
		}
		if err := CheckEntry(h); err != nil {
			return err
		}
		name := h.Name
		if err := apply(h, tr); err != nil {
			return fmt.Errorf("unpack entry %q: %w", name, err)
		}
	}
}

func unpackSquashfs(ctx context.Context, blobPath, dest string, opts UnpackOptions) error {
	bin, err := exec.LookPath("unsquashfs")
	if err != nil {
		return errors.New("squashfs layers need unsquashfs: apt-get install squashfs-tools")
	}
	if err := checkFSBlob(ctx, blobPath, opts); err != nil {
		return err
	}
	if floor := opts.floor(); floor > 0 {
		// unsquashfs writes faster than a timer can watch: a squashfs
		// says what its files hold, so a bomb is refused before it lands.
		if err := squashfsFits(ctx, bin, blobPath, dest, floor); err != nil {
			return fmt.Errorf("unsquashfs %s into %s: %w", blobPath, dest, err)
		}
	}
	// -f lets unsquashfs extract into the existing (empty) dest.
	args := []string{"-f", "-d", dest, "-n", "-q", "-p", strconv.Itoa(runtime.GOMAXPROCS(0))}
	if opts.Rootless {
		// trusted.* xattrs cannot be set unprivileged; strata's own
		// squashfs layers carry user.overlay.opaque for this case.
		args = append(args, "-user-xattrs")
	}
	args = append(args, blobPath)
	runCtx, stopWatch, lowSpace := watchSpace(ctx, dest, opts.floor())
	cmd := exec.CommandContext(runCtx, bin, args...)
	out, err := cmd.CombinedOutput()
	stopWatch()
	if err := lowSpace(); err != nil {
		return fmt.Errorf("unsquashfs %s into %s: %w", blobPath, dest, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	// Exit status 2 is "non-fatal errors" (ownership, devices, xattrs),
	// expected when unprivileged.
	if err != nil && !(opts.Rootless && errors.As(err, &ee) && ee.ExitCode() == 2) {
		return fmt.Errorf("unsquashfs %s into %s: %w: %s", blobPath, dest, err, bytes.TrimSpace(out))
	}
	return fixOpaque(ctx, dest, opts.UserXattr)
}

// fixOpaque leaves on every opaque dir below root exactly the opaque xattr
// of the namespace the consuming overlay reads, whichever namespace the
// squashfs carried (stacker's carry trusted.*, strata's both).
func fixOpaque(ctx context.Context, root string, userXattr bool) error {
	want, other := overlayfs.Namespace(userXattr), overlayfs.Namespace(!userXattr)
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if !d.IsDir() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !overlayfs.HasOpaque(p, other) {
			return nil
		}
		if !overlayfs.HasOpaque(p, want) {
			if err := unix.Lsetxattr(p, want+overlayfs.Opaque, []byte("y"), 0); err != nil {
				return fmt.Errorf("mark %s opaque: %w", p, err)
			}
		}
		// Leaving the other name would show up as a plain xattr inside
		// containers; failing to remove it (unprivileged) is harmless.
		_ = unix.Lremovexattr(p, other+overlayfs.Opaque)
		return nil
	})
}

// decompress returns the tar stream of a layer of type t read from r: the
// one place that knows which decompressor each tar type needs (diff ids,
// recompression and the unpack of zstd layers read layers this way; the
// unpack decodes gzip itself, in its read-ahead goroutine).
//
// The zstd and gzip decoders read r ahead of what they return, in
// goroutines of their own, and may go on doing so after the tar stream's
// end marker has been handed out: r belongs to the decoder until Close
// returns (Close stops those goroutines and waits for them). A caller that
// reads r itself, or what r reads from, must do it only after Close.
func decompress(r io.Reader, t layertype.Type, blobPath string) (io.ReadCloser, error) {
	switch t {
	case layertype.TarGzip:
		zr, err := pgzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read gzip layer %s: %w", blobPath, err)
		}
		return zr, nil
	case layertype.TarZstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("read zstd layer %s: %w", blobPath, err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}

// openTar opens the layer blob at blobPath, of tar type t (empty:
// sniffed from its first bytes), as its uncompressed tar stream; closing
// it closes the blob. Unpack, which also hashes the raw bytes, opens its
// own.
func openTar(ctx context.Context, blobPath string, t layertype.Type) (io.ReadCloser, error) {
	f, err := os.Open(blobPath)
	if err != nil {
		return nil, fmt.Errorf("open layer blob: %w", err)
	}
	br := bufio.NewReaderSize(ReaderWithContext(ctx, f), 1<<20)
	if t == "" {
		t = sniffType(br)
	}
	r, err := decompress(br, t, blobPath)
	if err != nil {
		f.Close()
		return nil, err
	}
	return blobStream{r, f}, nil
}

// blobStream is a decompressed layer that closes its blob too: the
// decompressor first, as it may still read the blob (see unpackTar).
type blobStream struct {
	io.ReadCloser
	blob *os.File
}

func (s blobStream) Close() error {
	err := s.ReadCloser.Close()
	s.blob.Close()
	return err
}

// sniffType tells a tar layer's compression from its first bytes.
func sniffType(br *bufio.Reader) layertype.Type {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		return layertype.TarGzip
	case bytes.HasPrefix(magic, zstdMagic):
		return layertype.TarZstd
	}
	return layertype.TarUncompressed
}
