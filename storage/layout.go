package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/apex/log"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/umoci/oci/cas/dir"
	"github.com/opencontainers/umoci/oci/casext"
	"golang.org/x/sys/unix"
)

func init() {
	// umoci logs routine GC decisions at info level through apex/log; a
	// build's output is for the build.
	log.SetLevel(log.WarnLevel)
}

// Layout is an open output OCI image layout.
type Layout struct {
	Path string
	cas  casext.Engine
	// indexMu serialises Tag's read-modify-write of index.json: images
	// built in parallel are tagged at the same time, and without it one
	// tag would overwrite the other's.
	indexMu sync.Mutex
	// moved says a tag now names another manifest than when the layout
	// was opened: only then can blobs have lost their last reference.
	moved bool
}

// OpenLayout opens the OCI layout at path, creating it when missing.
func OpenLayout(path string) (*Layout, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(path, "index.json")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := dir.Create(path); err != nil {
			return nil, fmt.Errorf("create OCI layout %s: %w", path, err)
		}
	}
	engine, err := dir.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", path, err)
	}
	return &Layout{Path: path, cas: casext.NewEngine(engine)}, nil
}

// Close releases the layout.
func (l *Layout) Close() error { return l.cas.Close() }

// Tag copies the image desc (manifest, config, layers) from the store into
// the layout and points tag at it. The index keeps its entries sorted by tag
// and is rewritten only when it changes, so rebuilding an unchanged image
// leaves the layout byte-identical. The referrers (SBOM) of the manifest
// the tag named before are dropped with it.
func (l *Layout) Tag(ctx context.Context, s *Store, tag string, desc v1.Descriptor) error {
	if !casext.IsValidReferenceName(tag) {
		return fmt.Errorf("invalid tag %q", tag)
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.copyManifest(ctx, s, desc); err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	idx, err := l.cas.GetIndex(ctx)
	if err != nil {
		return err
	}
	entry := desc
	entry.Annotations = map[string]string{v1.AnnotationRefName: tag}
	var entries []v1.Descriptor
	replaced := false
	for _, e := range idx.Manifests {
		if e.Annotations[v1.AnnotationRefName] == tag {
			if !replaced {
				entries = append(entries, entry)
				replaced = true
			}
			continue
		}
		entries = append(entries, e)
	}
	if !replaced {
		entries = append(entries, entry)
	}
	changed, err := l.putEntries(ctx, idx, entries)
	l.moved = l.moved || (changed && replaced)
	return err
}

// copyManifest copies the manifest desc, its config and its layers from
// the store into the layout; the caller holds the layout's lock.
func (l *Layout) copyManifest(ctx context.Context, s *Store, desc v1.Descriptor) error {
	m, _, err := s.ReadManifest(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("read %s from the store: %w", desc.Digest, err)
	}
	for _, d := range append([]v1.Descriptor{m.Config, desc}, m.Layers...) {
		if err := l.copyBlob(ctx, s, d.Digest); err != nil {
			return err
		}
	}
	return nil
}

// copyBlob hard-links a blob from the store when both are on one file
// system, which makes tagging a large image cost nothing; it copies
// otherwise.
func (l *Layout) copyBlob(ctx context.Context, s *Store, d digest.Digest) error {
	dst := filepath.Join(l.Path, "blobs", d.Algorithm().String(), d.Encoded())
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	src := s.BlobPath(d.String())
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	got, _, err := l.cas.PutBlob(ctx, f)
	if err != nil {
		return err
	}
	if got != d {
		return fmt.Errorf("blob %s in the store is corrupt (digest %s)", d, got)
	}
	return nil
}

// Resolve returns the manifest descriptor tagged tag.
func (l *Layout) Resolve(ctx context.Context, tag string) (v1.Descriptor, error) {
	idx, err := l.cas.GetIndex(ctx)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var tags []string
	for _, e := range idx.Manifests {
		name := e.Annotations[v1.AnnotationRefName]
		if name == tag {
			return e, nil
		}
		if name != "" { // referrers (SBOMs) have no tag
			tags = append(tags, name)
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image tagged %q in %s (tags: %v)", tag, l.Path, tags)
}

// ReadJSON decodes the blob d of the layout into v.
func (l *Layout) ReadJSON(ctx context.Context, d digest.Digest, v any) error {
	return readJSONBlob(ctx, l.cas, d, v)
}

// GC removes blobs no tag references any more, when Tag moved a tag since
// the layout was opened. Otherwise nothing lost a reference, and the walk
// over every manifest of the layout is skipped: that makes a cached build
// cheaper (blobs a killed build copied before it could tag wait for the
// next build that moves a tag).
func (l *Layout) GC(ctx context.Context) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if !l.moved {
		return nil
	}
	return l.cas.GC(ctx)
}

// lock serialises changes to the layout: between the goroutines of one
// build (indexMu) and between processes, since builds with different
// stores may share one output layout. Tag holds it from copying blobs to
// updating the index, so that another build's GC cannot collect blobs not
// yet referenced.
func (l *Layout) lock() (unlock func(), err error) {
	l.indexMu.Lock()
	dir, err := os.Open(l.Path)
	if err != nil {
		l.indexMu.Unlock()
		return nil, err
	}
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		dir.Close()
		l.indexMu.Unlock()
		return nil, fmt.Errorf("lock OCI layout %s: %w", l.Path, err)
	}
	return func() {
		dir.Close() // closing the descriptor releases the flock
		l.indexMu.Unlock()
	}, nil
}

// Tags lists the layout's tags, sorted.
func (l *Layout) Tags(ctx context.Context) ([]string, error) {
	idx, err := l.cas.GetIndex(ctx)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, e := range idx.Manifests {
		if t := e.Annotations[v1.AnnotationRefName]; t != "" {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	return tags, nil
}
