package dsl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// sourceDigest is the content digest of an import: file contents, modes,
// symlink targets and folder structure, but not timestamps or host owners,
// so touching a file without changing it keeps the cache.
func sourceDigest(src Source) (string, error) {
	switch s := src.(type) {
	case *LocalSource:
		if err := statKind(s.Path, s.Want); err != nil {
			return "", err
		}
		// The import copies what the path names, so a symlinked file or
		// folder is hashed by its target's content, not by the link.
		root, err := filepath.EvalSymlinks(s.Path)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		if err := hashTree(h, root); err != nil {
			return "", err
		}
		return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
	default:
		return "", fmt.Errorf("unsupported source %T", src)
	}
}

// fileDigest is the sha256 of a file's bytes.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashTree(h hash.Hash, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%q %o %s\n", filepath.ToSlash(rel), unixMode(info.Mode()), info.Mode().Type())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "-> %q\n", target)
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			fmt.Fprintf(h, "%d\n", info.Size())
			if _, err := io.Copy(h, f); err != nil {
				return fmt.Errorf("read %s: %w", path, err)
			}
		}
		return nil
	})
}

// layoutDigest reads the manifest digest tagged tag from the index of the
// OCI layout at dir. Only the top-level index is read: a tag that names an
// index of several platforms is resolved at build time.
func layoutDigest(dir, tag string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return "", fmt.Errorf("OCI layout %s: index.json: %w", dir, err)
	}
	var tags []string
	for _, m := range idx.Manifests {
		name := m.Annotations["org.opencontainers.image.ref.name"]
		if name == tag {
			return m.Digest, nil
		}
		if name != "" {
			tags = append(tags, name)
		}
	}
	return "", fmt.Errorf("OCI layout %s has no image tagged %q (tags: %s)", dir, tag, strings.Join(tags, ", "))
}
