package regcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Image is the local name of the image the key belongs to.
	Image string
	// KeyInputs is the local key document, kept in the committed record so
	// that a later build can say why it rebuilds (records on the registry
	// never carry it: it may name build values).
	KeyInputs json.RawMessage
	// Unpack tunes unpacking the layer folder (rootless builds).
	Unpack layer.UnpackOptions
	// Received, when set, counts the layer bytes downloaded.
	Received *atomic.Int64
}

// Fetch looks up the record of key, downloads and verifies its blobs,
// unpacks the layer folder and commits the record into st, which then
// holds the image as if its steps had run here. It returns ErrMiss when
// the registry has no record for key. Nothing is committed unless every
// blob matched its digest and unpacked: a failed Fetch leaves only files
// under the store's tmp/.
func (c *Cache) Fetch(ctx context.Context, st *storage.Store, key digest.Digest, o FetchOptions) (*storage.Record, error) {
	tag, err := Tag(key)
	if err != nil {
		return nil, err
	}
	ropts, err := c.remoteOptions(ctx)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(c.Repo.Tag(tag), ropts...)
	if notFound(err) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", c, err)
	}
	if len(desc.Manifest) > maxRecordSize {
		return nil, &recordError{fmt.Errorf("cache %s: record %s: manifest of %d bytes", c, tag, len(desc.Manifest))}
	}
	var m ispec.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, &recordError{fmt.Errorf("cache %s: record %s: manifest: %w", c, tag, err)}
	}
	if m.Config.MediaType != MediaTypeRecord {
		return nil, &recordError{fmt.Errorf("cache %s: %s is not a strata cache record (config media type %q)", c, tag, m.Config.MediaType)}
	}
	// The registry answered: from here on a failure is this record's.
	config, err := c.smallBlob(m.Config, ropts)
	if err != nil {
		return nil, asRecordError(err)
	}
	r, err := decode(key, m, config)
	if err != nil {
		return nil, &recordError{fmt.Errorf("cache %s: record %s: %w", c, tag, err)}
	}

	ws, err := st.NewWorkspace(o.Image + "-cache")
	if err != nil {
		return nil, err
	}
	defer ws.Discard()
	for _, b := range r.Layers {
		if t, err := layer.TypeOfMediaType(b.Descriptor.MediaType); err != nil || t != b.Type {
			return nil, &recordError{fmt.Errorf("cache %s: record %s: a %s layer has media type %q", c, tag, b.Type, b.Descriptor.MediaType)}
		}
	}
	// Only the blob that is unpacked here is checked against both its
	// digest and its diff ID, so only it is committed; the store encodes
	// the other layer types from the unpacked folder, which gives the same
	// bytes as the machine that filled the cache.
	var blobs []storage.CommitBlob
	if !r.Empty {
		u := unpackable(r.Layers)
		path := filepath.Join(ws.Out, u.Descriptor.Digest.Encoded())
		if err := c.download(ctx, u.Descriptor, path, ropts, o.Received); err != nil {
			return nil, asRecordError(err)
		}
		uo := o.Unpack
		uo.Digest, uo.DiffID = u.Descriptor.Digest, digest.Digest(u.DiffID)
		if err := layer.Unpack(ctx, path, u.Descriptor.MediaType, ws.Upper, uo); err != nil {
			return nil, &recordError{fmt.Errorf("cache %s: unpack %s layer of %s: %w", c, u.Type, o.Image, err)}
		}
		blobs = append(blobs, storage.CommitBlob{Path: path, LayerBlob: u})
	}
	rec, err := st.Commit(ws, storage.Record{Key: key, Image: o.Image, Empty: r.Empty, KeyInputs: o.KeyInputs, Labels: r.Labels}, blobs)
	if err != nil {
		return nil, fmt.Errorf("cache %s: commit %s: %w", c, o.Image, err)
	}
	return rec, nil
}

// smallBlob downloads a record's config, bounded and verified.
func (c *Cache) smallBlob(d ispec.Descriptor, ropts []remote.Option) ([]byte, error) {
	if d.Size > maxRecordSize || d.Size < 0 {
		return nil, &recordError{fmt.Errorf("cache %s: record of %d bytes", c, d.Size)}
	}
	l, err := remote.Layer(c.Repo.Digest(d.Digest.String()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", c, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("cache %s: record %s: %w", c, d.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("cache %s: record %s: %w", c, d.Digest, err)
	}
	if int64(len(b)) != d.Size || digest.FromBytes(b) != d.Digest {
		return nil, &recordError{fmt.Errorf("cache %s: record %s does not match its digest", c, d.Digest)}
	}
	return b, nil
}

// download writes the blob d to path, checking its size and digest while
// it streams.
func (c *Cache) download(ctx context.Context, d ispec.Descriptor, path string, ropts []remote.Option, received *atomic.Int64) (err error) {
	l, err := remote.Layer(c.Repo.Digest(d.Digest.String()), ropts...)
	if err != nil {
		return fmt.Errorf("cache %s: %w", c, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("cache %s: layer %s: %w", c, d.Digest, err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	h := d.Digest.Algorithm().Hash()
	var w io.Writer = io.MultiWriter(f, h)
	if received != nil {
		w = io.MultiWriter(w, counter{received})
	}
	n, err := io.Copy(w, layer.ReaderWithContext(ctx, io.LimitReader(rc, d.Size+1)))
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("cache %s: download layer %s: %w", c, d.Digest, err)
	}
	if n != d.Size || digest.NewDigest(d.Digest.Algorithm(), h) != d.Digest {
		return &recordError{fmt.Errorf("cache %s: layer %s does not match its digest or size", c, d.Digest)}
	}
	return nil
}

// asRecordError marks err as a problem of one record, unless the build
// was cancelled.
func asRecordError(err error) error {
	var re *recordError
	if errors.Is(err, context.Canceled) || errors.As(err, &re) {
		return err
	}
	return &recordError{err}
}

type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }
