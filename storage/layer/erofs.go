package layer

// Erofs layers are built by mkfs.erofs (erofs-utils) from a folder in the
// same "overlay form" as squashfs layers: whiteouts as char 0/0 nodes,
// opaque dirs marked with trusted.overlay.opaque and user.overlay.opaque,
// no other overlay xattr. mkfs.erofs 1.5 (Debian 12) reads only folders
// and cannot leave xattrs out, so an upper dir that carries the build
// overlay's own xattrs is first unpacked, through the OCI tar stream, into
// a folder beside the output, exactly as a tar layer is unpacked for a
// lowerdir; an upper dir without them is read as it is.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
	umoci "github.com/opencontainers/umoci/oci/layer"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
	"github.com/strata-build/strata/internal/verity"
)

// Media types of stacker's erofs layers, by compressor.
const (
	MediaTypeErofsLZ4HC = "application/vnd.stacker.image.layer.erofs+lz4hc"
	MediaTypeErofsLZ4   = "application/vnd.stacker.image.layer.erofs+lz4"
	MediaTypeErofsZstd  = "application/vnd.stacker.image.layer.erofs+zstd"
	// MediaTypeErofs is the media type without the compressor, which
	// stacker accepts too.
	MediaTypeErofs = "application/vnd.stacker.image.layer.erofs"
)

const mkfsErofsMissing = "erofs layers need mkfs.erofs: apt-get install erofs-utils"

// erofsUUID is the file system UUID of every erofs layer: mkfs.erofs picks
// a random one, which would make each build's blob differ.
const erofsUUID = "00000000-0000-0000-0000-000000000000"

func writeErofs(ctx context.Context, upperDir, outPath string, opts WriteOptions) (Result, error) {
	bin := opts.MkfsErofs
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("mkfs.erofs"); err != nil {
			return Result{}, errors.New(mkfsErofsMissing)
		}
	}
	src := upperDir
	if !squashfsDirModeOK(ctx, upperDir) {
		tmp, err := os.MkdirTemp(filepath.Dir(outPath), ".erofs-src-")
		if err != nil {
			return Result{}, fmt.Errorf("erofs layer: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := overlayForm(ctx, upperDir, tmp, opts); err != nil {
			return Result{}, fmt.Errorf("erofs layer of %s: %w", upperDir, err)
		}
		src = tmp
	}
	epoch := strconv.FormatInt(max(opts.epoch().Unix(), 0), 10)
	// -T sets every inode's time to the epoch, as squashfs layers'
	// -all-time does: one time per layer keeps inodes compact and the
	// blob reproducible.
	// lz4, not lz4hc: mkfs.erofs 1.5 compresses on one thread, and lz4hc
	// took 43 s and 84 s on the W1 and W2 bench trees where lz4 took 3.0
	// and 5.4 s (uncompressed: 1.8 and 2.3 s) for images 3-4% larger.
	cmd := exec.CommandContext(ctx, bin, "--quiet", "-zlz4", "-T"+epoch, "-U"+erofsUUID, outPath, src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("mkfs.erofs %s: %w: %s", outPath, err, bytes.TrimSpace(out.Bytes()))
	}
	return finishFS(outPath, MediaTypeErofsLZ4, opts)
}

// finishFS appends the dm-verity tree to a file system image (unless
// NoVerity) and describes the blob: a file system layer is stored
// uncompressed, so its diff ID is its digest, as stacker records it.
func finishFS(outPath, mediaType string, opts WriteOptions) (Result, error) {
	if opts.NoVerity {
		d, size, err := digestFile(outPath)
		if err != nil {
			return Result{}, err
		}
		return Result{Digest: d, DiffID: d, Size: size, MediaType: mediaType}, nil
	}
	// One read of the image gives both its tree and the blob's digest.
	h := sha256.New()
	root, err := verity.AppendHashing(outPath, h)
	if err != nil {
		return Result{}, err
	}
	fi, err := os.Stat(outPath)
	if err != nil {
		return Result{}, err
	}
	d := digest.NewDigest(digest.SHA256, h)
	return Result{Digest: d, DiffID: d, Size: fi.Size(), MediaType: mediaType, RootHash: root}, nil
}

// overlayForm writes upperDir into the empty folder dest in overlay form
// without the build overlay's own xattrs: through the OCI tar stream and
// the unpacker of tar layers, then marking opaque dirs in both xattr
// namespaces where this process may (trusted.* needs root).
func overlayForm(ctx context.Context, upperDir, dest string, opts WriteOptions) error {
	pr, pw := io.Pipe()
	streamed := make(chan error, 1)
	go func() {
		_, err := tarStream(ctx, upperDir, formOCI, opts, pw, nil)
		pw.CloseWithError(err)
		streamed <- err
	}()
	err := extractTar(dest, pr, &umoci.UnpackOptions{OnDiskFormat: umoci.OverlayfsRootfs{UserXattr: opts.UserXattr}})
	stopped := errors.New("unpack stopped")
	pr.CloseWithError(stopped)
	// The stream's own error (a walk that failed) counts; the pipe
	// closed under it after a complete unpack does not.
	if serr := <-streamed; err == nil && serr != nil && !errors.Is(serr, stopped) {
		err = serr
	}
	if err != nil {
		return err
	}
	if opts.UserXattr {
		return nil // only user.* xattrs can be set here
	}
	return filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if overlayfs.HasOpaque(p, overlayfs.Namespace(false)) {
			if err := unix.Lsetxattr(p, overlayfs.Namespace(true)+overlayfs.Opaque, []byte("y"), 0); err != nil {
				return fmt.Errorf("mark %s opaque: %w", p, err)
			}
		}
		return nil
	})
}

// unpackErofs extracts an erofs layer into dest in overlay form. As root it
// mounts the image read-only through a loop device and copies the tree
// with cp, which keeps xattrs (opaque dirs, file capabilities):
// fsck.erofs 1.5's extraction drops them all. Without root, where only
// that extraction is possible, ExtractErofs puts the opaque marks back;
// other xattrs (file capabilities, user.*) of an erofs base are lost.
func unpackErofs(ctx context.Context, blobPath, dest string, opts UnpackOptions) error {
	if err := checkFSBlob(ctx, blobPath, opts); err != nil {
		return err
	}
	if opts.Rootless || os.Geteuid() != 0 {
		// The kernel mounts erofs for root only, and Debian 12 has no
		// erofsfuse: extract, losing the xattrs but the opaque marks.
		ns := overlayfs.Namespace(opts.UserXattr)
		return ExtractErofs(ctx, blobPath, dest, func(dir string) error {
			return unix.Lsetxattr(dir, ns+overlayfs.Opaque, []byte("y"), 0)
		})
	}
	mnt, err := os.MkdirTemp(filepath.Dir(dest), ".erofs-mnt-")
	if err != nil {
		return fmt.Errorf("unpack erofs layer: %w", err)
	}
	defer os.Remove(mnt)
	if out, err := exec.CommandContext(ctx, "mount", "-t", "erofs", "-o", "loop,ro,nodev,nosuid", blobPath, mnt).CombinedOutput(); err != nil {
		return fmt.Errorf("mount erofs layer %s: %w: %s", blobPath, err, bytes.TrimSpace(out))
	}
	defer func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) }()
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--no-target-directory", mnt, dest).CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("copy erofs layer %s into %s: %w: %s", blobPath, dest, err, bytes.TrimSpace(out))
	}
	return fixOpaque(ctx, dest, opts.UserXattr)
}

// checkFSBlob checks a squashfs or erofs blob against the digest (and diff
// ID, which is the same for these layers) the caller expects, in a pass of
// its own since the unpackers seek in the blob.
func checkFSBlob(ctx context.Context, blobPath string, opts UnpackOptions) error {
	want := opts.Digest
	if opts.DiffID != "" {
		if want != "" && opts.DiffID != want {
			return fmt.Errorf("layer %s: its diff ID is its digest, not the expected %s: %w", want, opts.DiffID, ErrDiffID)
		}
		want = opts.DiffID
	}
	v, err := newVerifier(want)
	if err != nil || v == nil {
		return err
	}
	f, err := os.Open(blobPath)
	if err != nil {
		return fmt.Errorf("open layer blob: %w", err)
	}
	_, err = io.CopyBuffer(v.h, ReaderWithContext(ctx, f), make([]byte, 1<<20))
	f.Close()
	if err != nil {
		return fmt.Errorf("hash layer blob %s: %w", blobPath, err)
	}
	if err := v.check(blobPath); err != nil {
		if opts.Digest == "" { // checked as the diff ID alone
			return fmt.Errorf("%w: %w", err, ErrDiffID)
		}
		return err
	}
	return nil
}

// ExtractErofs extracts the erofs layer blobPath into dest (empty or
// absent) with fsck.erofs, which needs no privilege, and calls mark on
// every folder the image marks opaque, since fsck.erofs 1.5 extracts no
// xattrs. Owners become the caller's; modes, whiteouts (char 0/0) and
// contents are the image's.
func ExtractErofs(ctx context.Context, blobPath, dest string, mark func(dir string) error) error {
	bin, err := exec.LookPath("fsck.erofs")
	if err != nil {
		return errors.New("extracting erofs layers needs fsck.erofs: apt-get install erofs-utils")
	}
	cmd := exec.CommandContext(ctx, bin, "--extract="+dest, "--preserve-perms", "--no-preserve-owner", blobPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("fsck.erofs --extract %s: %w: %s", blobPath, err, bytes.TrimSpace(out))
	}
	f, err := os.Open(blobPath)
	if err != nil {
		return err
	}
	defer f.Close()
	opaque, err := ErofsOpaqueDirs(f)
	if err != nil {
		return fmt.Errorf("erofs layer %s: %w", blobPath, err)
	}
	for _, rel := range opaque {
		if err := mark(filepath.Join(dest, rel)); err != nil {
			return fmt.Errorf("mark %s opaque: %w", rel, err)
		}
	}
	return nil
}
