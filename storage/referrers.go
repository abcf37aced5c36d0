package storage

import (
	"context"
	"fmt"
	"reflect"
	"sort"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// SubjectAnnotation, on an entry of the output layout's index.json, names
// the manifest the entry is a referrer of (an SBOM of the image). OCI
// image-layout 1.1 lists referrers as plain entries without a ref.name;
// the annotation lets strata find and drop them without reading every
// manifest, and skopeo, oras and regctl ignore it.
const SubjectAnnotation = "com.github.strata-build.subject"

// PutArtifact writes data and an OCI 1.1 artifact manifest carrying it
// into the store: artifactType names what it is, the config is the empty
// descriptor, the one layer is data with mediaType artifactType, and the
// subject is the manifest subject, which makes the artifact one of its
// referrers. The JSON is deterministic: the same data, subject and
// annotations give the same digest.
func (s *Store) PutArtifact(ctx context.Context, artifactType string, data []byte, subject v1.Descriptor, annotations map[string]string) (v1.Descriptor, error) {
	layer, err := s.putBytes(ctx, artifactType, data)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write %s: %w", artifactType, err)
	}
	if _, err := s.putBytes(ctx, v1.MediaTypeEmptyJSON, v1.DescriptorEmptyJSON.Data); err != nil {
		return v1.Descriptor{}, fmt.Errorf("write the empty config: %w", err)
	}
	cfg := v1.DescriptorEmptyJSON
	cfg.Data = nil // the blob is in the store; data in the manifest is optional
	m := v1.Manifest{
		Versioned:    ispec.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       cfg,
		Layers:       []v1.Descriptor{layer},
		Subject:      &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  annotations,
	}
	desc, err := s.putJSON(ctx, v1.MediaTypeImageManifest, m)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("write %s manifest: %w", artifactType, err)
	}
	desc.ArtifactType = artifactType
	return desc, nil
}

// AddReferrer copies the artifact desc (as PutArtifact returned it) from
// the store into the layout and lists it in index.json as a referrer of
// subject, in place of any referrer of subject with the same artifact
// type (an SBOM made again). Like Tag, it leaves an unchanged index as
// it is.
func (l *Layout) AddReferrer(ctx context.Context, s *Store, desc v1.Descriptor, subject digest.Digest) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.copyManifest(ctx, s, desc); err != nil {
		return fmt.Errorf("%s of %s: %w", desc.ArtifactType, subject, err)
	}
	idx, err := l.cas.GetIndex(ctx)
	if err != nil {
		return err
	}
	entry := v1.Descriptor{
		MediaType:    desc.MediaType,
		Digest:       desc.Digest,
		Size:         desc.Size,
		ArtifactType: desc.ArtifactType,
		Annotations:  map[string]string{SubjectAnnotation: subject.String()},
	}
	entries := []v1.Descriptor{entry}
	for _, e := range idx.Manifests {
		if e.Annotations[SubjectAnnotation] == subject.String() && e.ArtifactType == desc.ArtifactType {
			if e.Digest != desc.Digest {
				l.moved = true // the old one's blobs are garbage now
			}
			continue
		}
		entries = append(entries, e)
	}
	_, err = l.putEntries(ctx, idx, entries)
	return err
}

// Referrers returns the layout's referrers of subject with artifactType
// (all of them when it is empty).
func (l *Layout) Referrers(ctx context.Context, subject digest.Digest, artifactType string) ([]v1.Descriptor, error) {
	idx, err := l.cas.GetIndex(ctx)
	if err != nil {
		return nil, err
	}
	var out []v1.Descriptor
	for _, e := range idx.Manifests {
		if e.Annotations[SubjectAnnotation] == subject.String() && (artifactType == "" || e.ArtifactType == artifactType) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ReadBlob returns the blob d of the layout, up to 32 MiB, checked.
func (l *Layout) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	return readSmallBlob(ctx, l.cas, d)
}

// putEntries writes index.json with entries: referrers whose subject no
// entry lists any more dropped (their image's tag moved), tags sorted by
// name, referrers before them sorted by subject and digest. It writes
// nothing, and returns false, when that is what the index holds.
func (l *Layout) putEntries(ctx context.Context, idx v1.Index, entries []v1.Descriptor) (bool, error) {
	listed := map[string]bool{}
	for _, e := range entries {
		if e.Annotations[SubjectAnnotation] == "" {
			listed[e.Digest.String()] = true
		}
	}
	kept := entries[:0:0]
	for _, e := range entries {
		if s := e.Annotations[SubjectAnnotation]; s != "" && !listed[s] {
			l.moved = true
			continue
		}
		kept = append(kept, e)
	}
	key := func(e v1.Descriptor) [3]string {
		return [3]string{e.Annotations[v1.AnnotationRefName], e.Annotations[SubjectAnnotation], e.Digest.String()}
	}
	sort.SliceStable(kept, func(a, b int) bool {
		ka, kb := key(kept[a]), key(kept[b])
		for i := range ka {
			if ka[i] != kb[i] {
				return ka[i] < kb[i]
			}
		}
		return false
	})
	if reflect.DeepEqual(kept, idx.Manifests) {
		return false, nil
	}
	idx.Manifests = kept
	return true, l.cas.PutIndex(ctx, idx)
}
