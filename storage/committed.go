package storage

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// CommittedLayers maps the digest of every layer blob the store's records
// hold to the committed layer folder the blob encodes (the overlay upper
// dir of the build that made it). The folder has the owners the build's
// steps gave, where unpacking the blob without root cannot chown: a
// rootless strata run uses it to show the same owners as the build and
// strata chroot. Records whose blobs or folder are gone are left out.
func (s *Store) CommittedLayers() (map[digest.Digest]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, "cache"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue // last/ holds copies of the records
		}
		rec, garbage, err := readRecord(filepath.Join(s.Root, "cache", e.Name()))
		if err != nil {
			return nil, err
		}
		if rec == nil || garbage != "" || keyFile(rec.Key)+".json" != e.Name() || rec.Empty || s.missing(rec) != "" {
			continue
		}
		for _, b := range rec.Layers {
			out[b.Descriptor.Digest] = s.LayerDir(rec.LayerDir)
		}
	}
	return out, nil
}
