package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/verity"
)

// Record is what the store remembers of one built node, found by the
// node's cache key.
type Record struct {
	Key   digest.Digest `json:"key"`
	Image string        `json:"image"`
	// Empty means the image's steps changed nothing: it adds no layer.
	Empty bool `json:"empty,omitempty"`
	// LayerDir names the unpacked layer under layers/ (the committed
	// overlay upper dir), used as a lower dir by images built on this one.
	LayerDir string `json:"layerDir,omitempty"`
	// Layers holds one encoded blob per layer type built.
	Layers []LayerBlob `json:"layers,omitempty"`
	// KeyInputs is the document the key is the digest of; the next build
	// compares against it to say why an image was rebuilt.
	KeyInputs json.RawMessage `json:"keyInputs,omitempty"`
	// Labels are the labels the image's GenerateLabels scripts wrote,
	// which the key alone cannot give back.
	Labels map[string]string `json:"labels,omitempty"`
}

// UnmarshalJSON reads a record as this strata can use it. A layer blob of
// a type it does not know (written by a newer strata sharing the store)
// is left out: this strata cannot use it, and refusing the whole record
// would drop a cache entry the other strata still uses. A blob without a
// type is kept, for check to refuse.
func (r *Record) UnmarshalJSON(data []byte) error {
	type record Record // its fields without this method
	var raw struct {
		record
		Layers []json.RawMessage `json:"layers,omitempty"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*r = Record(raw.record)
	r.Layers = nil
	for _, l := range raw.Layers {
		var named struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(l, &named); err != nil {
			return err
		}
		if named.Type != "" && !layertype.Type(named.Type).Known() {
			continue
		}
		var b LayerBlob
		if err := json.Unmarshal(l, &b); err != nil {
			return err
		}
		r.Layers = append(r.Layers, b)
	}
	return nil
}

// LayerBlob is one encoding of a committed layer.
type LayerBlob struct {
	// Type is decoded by its canonical name only (see Record.UnmarshalJSON
	// for types this strata does not know).
	Type       layertype.Type   `json:"type"`
	Descriptor ispec.Descriptor `json:"descriptor"`
	DiffID     string           `json:"diffID"`
}

// Verity reports whether the blob carries a dm-verity tree, which its
// descriptor's root hash annotation says.
func (b LayerBlob) Verity() bool {
	_, ok := verity.RootHash(b.Descriptor.Annotations)
	return ok
}

// Blob returns the layer blob of the given type; for squashfs and erofs,
// the one with a dm-verity tree or the one without, as withVerity says
// (a build with --no-verity must not reuse a blob that has one, nor the
// reverse). Tar blobs have no tree, whatever withVerity says.
func (r *Record) Blob(typ layertype.Type, withVerity bool) (LayerBlob, bool) {
	for _, b := range r.Layers {
		if b.Type == typ && (!typ.FS() || b.Verity() == withVerity) {
			return b, true
		}
	}
	return LayerBlob{}, false
}

// keyFile is the name a key takes in the store's file names.
func keyFile(key digest.Digest) string { return key.Encoded() }

func (s *Store) recordPath(key digest.Digest) string {
	return filepath.Join(s.Root, "cache", keyFile(key)+".json")
}

func (s *Store) lastPath(image string) string {
	return filepath.Join(s.Root, "cache", "last", image+".json")
}

// Lookup returns the record of key, or nil when there is none. A record
// whose blobs or layer folder are gone, or a file in its place that strata
// did not write (see Record.check), is dropped, not trusted; dropped says
// why.
func (s *Store) Lookup(key digest.Digest) (rec *Record, dropped string, err error) {
	if err := key.Validate(); err != nil {
		return nil, "", fmt.Errorf("cache key %q: %w", key, err)
	}
	rec, garbage := s.remembered(key), ""
	read := rec == nil
	if read {
		rec, garbage, err = readRecord(s.recordPath(key))
		if err != nil || (rec == nil && garbage == "") {
			return nil, "", err
		}
	}
	if garbage == "" && rec.Key != key {
		garbage = "it is the record of " + rec.Key.String()
	}
	if garbage != "" {
		dropped = "its record is not one strata wrote (" + garbage + ")"
	} else if dropped = s.missing(rec); dropped == "" {
		if read {
			s.remember(rec)
		}
		return rec, "", nil
	}
	s.forget(key)
	if err := os.Remove(s.recordPath(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	return nil, dropped, nil
}

// check says why r cannot be a record strata wrote, or "". Everything a
// build takes from a record is checked: a file that is valid JSON but
// empty or another tool's must make the image rebuild, not fail every
// later build with a reason nobody can act on, and a layer folder name
// that is not one name under layers/ must never become an overlay lower
// dir.
func (r *Record) check() string {
	if r.Key.Validate() != nil {
		return fmt.Sprintf("key %q is not a digest", r.Key)
	}
	if r.Image == "" {
		return "it names no image"
	}
	switch {
	case r.Empty && r.LayerDir != "":
		return "an empty layer with a layer folder"
	case !r.Empty && (r.LayerDir == "" || r.LayerDir == "." || r.LayerDir == ".." || strings.ContainsRune(r.LayerDir, '/')):
		return fmt.Sprintf("layer folder %q is not a name under layers/", r.LayerDir)
	}
	seen := map[layertype.Type]bool{}
	for _, b := range r.Layers {
		switch {
		case b.Type == "":
			return "a layer blob has no type"
		case seen[b.Type]:
			return fmt.Sprintf("two %s layer blobs", b.Type)
		case b.Descriptor.Digest.Validate() != nil:
			return fmt.Sprintf("%s layer blob digest %q is not a digest", b.Type, b.Descriptor.Digest)
		case b.Descriptor.Size < 0:
			return fmt.Sprintf("%s layer blob has a negative size", b.Type)
		}
		if _, err := digest.Parse(b.DiffID); err != nil {
			return fmt.Sprintf("%s layer diff id %q is not a digest", b.Type, b.DiffID)
		}
		seen[b.Type] = true
	}
	return ""
}

func (s *Store) missing(rec *Record) string {
	if !rec.Empty {
		if _, err := os.Stat(s.LayerDir(rec.LayerDir)); err != nil {
			return "its layer folder is gone"
		}
	}
	for _, b := range rec.Layers {
		fi, err := os.Stat(s.BlobPath(b.Descriptor.Digest.String()))
		if err != nil {
			return fmt.Sprintf("its %s blob %s is gone", b.Type, b.Descriptor.Digest)
		}
		// A power loss can leave a renamed file truncated; the size
		// catches that without hashing the blob on every lookup.
		if fi.Size() != b.Descriptor.Size {
			return fmt.Sprintf("its %s blob %s has %d bytes, not %d", b.Type, b.Descriptor.Digest, fi.Size(), b.Descriptor.Size)
		}
	}
	return ""
}

// Last returns the most recent record committed for the named image, or
// nil: the build log compares against it to say why an image is rebuilt.
// A file there that strata did not write counts as none.
func (s *Store) Last(image string) *Record {
	rec, garbage, _ := readRecord(s.lastPath(image))
	if rec == nil || garbage != "" || rec.Image != image {
		return nil
	}
	return rec
}

// readRecord returns the record at path, or nil when there is none. A
// file that is not a record strata wrote (not JSON of one, or failing
// Record.check) is not an error but garbage, which says why; the caller
// drops it and the image is rebuilt.
func readRecord(path string) (rec *Record, garbage string, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	rec = &Record{}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, "not JSON of a record: " + err.Error(), nil
	}
	if why := rec.check(); why != "" {
		return nil, why, nil
	}
	return rec, "", nil
}

// CommitBlob is a layer blob written into a workspace, ready to move into
// the blob store.
type CommitBlob struct {
	Path string
	LayerBlob
}

// Commit moves the workspace's upper dir and blobs into the store and
// writes the record for key. Each move is a rename within the store, and
// the record is written last, so an interrupted commit leaves at most
// unreferenced files, never a record pointing at something half-written.
// An empty layer (rec.Empty) needs no workspace: ws may be nil.
func (s *Store) Commit(ws *Workspace, rec Record, blobs []CommitBlob) (*Record, error) {
	if err := rec.Key.Validate(); err != nil {
		return nil, fmt.Errorf("commit %s: cache key %q: %w", rec.Image, rec.Key, err)
	}
	for _, b := range blobs {
		dst := s.BlobPath(b.Descriptor.Digest.String())
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(b.Path, dst); err != nil {
			return nil, fmt.Errorf("commit layer of %s: %w", rec.Image, err)
		}
		rec.Layers = append(rec.Layers, b.LayerBlob)
	}
	s.forget(rec.Key) // its layer folder and blobs are about to change
	if !rec.Empty {
		rec.LayerDir = "k-" + keyFile(rec.Key)
		dst := s.LayerDir(rec.LayerDir)
		if err := s.removeTree(dst); err != nil {
			return nil, err
		}
		if err := os.Rename(ws.Upper, dst); err != nil {
			return nil, fmt.Errorf("commit layer folder of %s: %w", rec.Image, err)
		}
	}
	if err := writeJSON(s.recordPath(rec.Key), rec); err != nil {
		return nil, err
	}
	s.remember(&rec)
	if err := writeJSON(s.lastPath(rec.Image), rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// remembered returns a copy of the record of key this handle last read or
// wrote, or nil.
func (s *Store) remembered(key digest.Digest) *Record {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	r := s.records[key]
	if r == nil {
		return nil
	}
	c := *r
	c.Layers = slices.Clone(r.Layers)
	return &c
}

func (s *Store) forget(key digest.Digest) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	delete(s.records, key)
}

// remember keeps a copy of rec, valid until this handle writes it again:
// callers may change the record they are given.
func (s *Store) remember(rec *Record) {
	c := *rec
	c.Layers = slices.Clone(rec.Layers)
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if s.records == nil {
		s.records = map[digest.Digest]*Record{}
	}
	s.records[c.Key] = &c
}

// writeJSON writes v to path atomically: a reader sees the old file or the
// whole new one.
func writeJSON(path string, v any) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	// The record is what makes a layer trusted: it must reach the disk
	// before the rename makes it visible.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// AddBlob adds another encoding of an already committed layer to the record
// of key: the blob at blob.Path is renamed into the blob store, then the
// record is rewritten atomically, so a reader sees the record with or
// without the new type, never one naming a blob that is not there. Adding
// a type the record already has keeps the existing blob.
func (s *Store) AddBlob(key digest.Digest, blob CommitBlob) (*Record, error) {
	rec, dropped, err := s.Lookup(key)
	if err != nil {
		return nil, err
	}
	if rec == nil && dropped != "" {
		return nil, fmt.Errorf("add %s layer: the cache record of %s was dropped: %s", blob.Type, key, dropped)
	}
	if rec == nil {
		return nil, fmt.Errorf("add %s layer: no cache record for %s", blob.Type, key)
	}
	if _, ok := rec.Blob(blob.Type, blob.Verity()); ok {
		os.Remove(blob.Path)
		return rec, nil
	}
	// A squashfs or erofs blob replaces the one of the other verity
	// setting: a record keeps one blob per type, and the old blob goes
	// with the next collection unless an image still refers to it.
	rec.Layers = slices.DeleteFunc(rec.Layers, func(b LayerBlob) bool { return b.Type == blob.Type })
	dst := s.BlobPath(blob.Descriptor.Digest.String())
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(blob.Path, dst); err != nil {
		return nil, fmt.Errorf("add %s layer of %s: %w", blob.Type, rec.Image, err)
	}
	rec.Layers = append(rec.Layers, blob.LayerBlob)
	if err := writeJSON(s.recordPath(key), rec); err != nil {
		return nil, err
	}
	s.remember(rec)
	if last := s.Last(rec.Image); last != nil && last.Key == key {
		if err := writeJSON(s.lastPath(rec.Image), rec); err != nil {
			return nil, err
		}
	}
	return rec, nil
}
