package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/storage/layer"
)

// Unpacked returns the folder holding the layer blob desc unpacked in
// overlay format, unpacking it first if this store never did. Each
// distinct layer is unpacked once and shared by every image above it.
// When opts.DiffID is set (the diff ID an image config claims for the
// layer), the layer's uncompressed content is checked against it: during
// the unpack, or against what this store measured when it unpacked it
// before (see checkDiffID).
func (s *Store) Unpacked(ctx context.Context, desc v1.Descriptor, opts layer.UnpackOptions) (string, error) {
	if err := desc.Digest.Validate(); err != nil {
		return "", fmt.Errorf("layer digest %q: %w", desc.Digest, err)
	}
	dst := s.LayerDir("b-" + desc.Digest.Encoded())
	if _, err := os.Stat(dst); err == nil {
		return dst, s.checkDiffID(ctx, desc, opts.DiffID)
	}
	// Images built in parallel on one base ask for its layers at once:
	// the first unpacks, the others wait for it and share the folder,
	// each checking the diff ID its own config claims.
	for {
		dir, ran, err := s.unpacks.Do(desc.Digest.String(), func() (string, error) {
			if _, err := os.Stat(dst); err == nil {
				return dst, s.checkDiffID(ctx, desc, opts.DiffID)
			}
			return s.unpack(ctx, desc, dst, opts)
		})
		if ran {
			return dir, err
		}
		if _, err := os.Stat(dst); err == nil {
			return dst, s.checkDiffID(ctx, desc, opts.DiffID)
		}
		// The unpack this one waited for failed: try its own.
	}
}

// unpack unpacks the layer blob desc into dst, through a folder under
// tmp/ renamed into place.
func (s *Store) unpack(ctx context.Context, desc v1.Descriptor, dst string, opts layer.UnpackOptions) (string, error) {
	tmp, err := os.MkdirTemp(filepath.Join(s.Root, "tmp"), "unpack-")
	if err != nil {
		return "", err
	}
	defer removeAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", err
	}
	claim := opts.DiffID
	opts.Digest = desc.Digest
	if err := layer.Unpack(ctx, s.BlobPath(desc.Digest.String()), desc.MediaType, root, opts); err != nil {
		if errors.Is(err, layer.ErrDiffID) {
			return "", fmt.Errorf("unpack layer %s: its image config's rootfs.diff_ids claims %s: %w", desc.Digest, claim, err)
		}
		return "", fmt.Errorf("unpack layer %s: %w", desc.Digest, err)
	}
	if claim != "" {
		// Verified in the unpack: later claims about this layer are
		// compared with it without reading the blob again.
		if err := s.RecordDiffID(desc.Digest, claim); err != nil {
			return "", err
		}
	}
	if err := os.Rename(root, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// UnpackAll unpacks the given layers in parallel and returns their
// folders in the same order.
func (s *Store) UnpackAll(ctx context.Context, descs []v1.Descriptor, opts layer.UnpackOptions) ([]string, error) {
	return s.unpackAll(ctx, descs, nil, opts)
}

// UnpackBase unpacks the layers of the base img as UnpackAll does, each
// checked against the diff ID img's config claims for it, so that an image
// built on it never carries a config that contradicts its layers. Its
// errors name img.Source. An unpack that fails (one that would leave less
// free space than opts.MinFree, say) leaves nothing behind (see Unpacked).
func (s *Store) UnpackBase(ctx context.Context, img *BaseImage, opts layer.UnpackOptions) ([]string, error) {
	if err := diffIDCount(img); err != nil {
		return nil, s.baseError(img, err)
	}
	dirs, err := s.unpackAll(ctx, img.Manifest.Layers, img.Config.RootFS.DiffIDs, opts)
	return dirs, s.baseError(img, err)
}

func (s *Store) baseError(img *BaseImage, err error) error {
	if err == nil || img.Source == "" || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%s: %w", img.Source, err)
}

func (s *Store) unpackAll(ctx context.Context, descs []v1.Descriptor, diffIDs []digest.Digest, opts layer.UnpackOptions) ([]string, error) {
	dirs := make([]string, len(descs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for n, d := range descs {
		o := opts
		if diffIDs != nil {
			o.DiffID = diffIDs[n]
		}
		g.Go(func() error {
			p, err := s.Unpacked(ctx, d, o)
			dirs[n] = p
			return err
		})
	}
	return dirs, g.Wait()
}

// VerifyDiffIDs checks every diff ID the config of the base img claims
// against its layer: by what this store measured when it unpacked the
// layer (UnpackBase), or, for a layer never unpacked here (an image with
// no steps on it), by reading the blob once now.
func (s *Store) VerifyDiffIDs(ctx context.Context, img *BaseImage) error {
	if err := diffIDCount(img); err != nil {
		return s.baseError(img, err)
	}
	for n, d := range img.Manifest.Layers {
		if err := s.checkDiffID(ctx, d, img.Config.RootFS.DiffIDs[n]); err != nil {
			return s.baseError(img, err)
		}
	}
	return nil
}

func diffIDCount(img *BaseImage) error {
	if n, m := len(img.Config.RootFS.DiffIDs), len(img.Manifest.Layers); n != m {
		return fmt.Errorf("manifest %s has %d layers but its config %s claims %d rootfs.diff_ids", img.Descriptor.Digest, m, img.Manifest.Config.Digest, n)
	}
	return nil
}

// checkDiffID compares claim (if any) with the diff ID of the layer desc,
// as recorded by the unpack that verified it, or measured now from the
// blob and recorded.
func (s *Store) checkDiffID(ctx context.Context, desc v1.Descriptor, claim digest.Digest) error {
	if claim == "" {
		return nil
	}
	if err := claim.Validate(); err != nil {
		return fmt.Errorf("layer %s: its image config's rootfs.diff_ids claims %q: %w", desc.Digest, claim, err)
	}
	got := s.recordedDiffID(desc.Digest)
	if got == "" {
		measured, err := layer.DiffIDOf(ctx, s.BlobPath(desc.Digest.String()), desc.MediaType)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		got = measured
		if got == claim {
			if err := s.RecordDiffID(desc.Digest, got); err != nil {
				return err
			}
		}
	}
	if got != claim {
		return diffIDError(desc, claim, got)
	}
	return nil
}

func diffIDError(desc v1.Descriptor, claim, got digest.Digest) error {
	return fmt.Errorf("layer %s: its image config's rootfs.diff_ids claims %s, but its content is %s: %w", desc.Digest, claim, got, layer.ErrDiffID)
}

// diffIDPath is where the store records the diff ID it verified for the
// layer blob d.
func (s *Store) diffIDPath(d digest.Digest) string {
	return filepath.Join(s.Root, "diffids", d.Algorithm().String(), d.Encoded())
}

func (s *Store) recordedDiffID(d digest.Digest) digest.Digest {
	b, err := os.ReadFile(s.diffIDPath(d))
	if err != nil {
		return ""
	}
	got := digest.Digest(b)
	if got.Validate() != nil {
		return "" // damaged: measure again
	}
	return got
}

// RecordDiffID remembers diffID as measured for the layer blob d, so that
// VerifyDiffIDs need not read the blob: the unpack, or the scan of a
// tarball base, measured it. The record is written whole under tmp/ then
// renamed, so an interrupted write leaves nothing a later build trusts.
func (s *Store) RecordDiffID(d, diffID digest.Digest) error {
	p := s.diffIDPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.Root, "tmp"), "diffid-")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(diffID.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("record diff ID of layer %s: %w", d, err)
	}
	return nil
}
