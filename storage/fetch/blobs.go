package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// maxManifestSize bounds what is read of a manifest, index or config: they
// are small JSON documents, and a registry answering gigabytes for one is
// hostile or broken.
const maxManifestSize = 8 << 20

// haveBlob reports whether the store holds the blob d.
func haveBlob(st *storage.Store, d digest.Digest) bool {
	_, err := os.Stat(st.BlobPath(d.String()))
	return err == nil
}

// readSmallBlob reads a JSON blob of the store and checks its digest: a
// blob file damaged on disk must not be trusted as a manifest.
func readSmallBlob(st *storage.Store, d digest.Digest) ([]byte, error) {
	f, err := os.Open(st.BlobPath(d.String()))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifestSize {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d, maxManifestSize)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s in the store has digest %s (damaged)", d, got)
	}
	return b, nil
}

// putVerified streams r into the store as the blob want. The content goes
// to a temporary file under the store's tmp/ first and is renamed into
// the blob store only when its digest matched, so a wrong or truncated
// download never becomes a blob. mismatch builds the error for a digest
// that does not match.
func putVerified(ctx context.Context, st *storage.Store, r io.Reader, want digest.Digest, mismatch func(got digest.Digest) error) (err error) {
	if err := want.Validate(); err != nil {
		return fmt.Errorf("expected digest: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Join(st.Root, "tmp"), "fetch-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	dg := want.Algorithm().Digester()
	if _, err := io.Copy(io.MultiWriter(tmp, dg.Hash()), layer.ReaderWithContext(ctx, r)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := dg.Digest(); got != want {
		return mismatch(got)
	}
	dst := st.BlobPath(want.String())
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// ErrDigestMismatch is returned (wrapped) when fetched content does not
// have the digest it was pinned to.
var ErrDigestMismatch = errors.New("digest mismatch")
