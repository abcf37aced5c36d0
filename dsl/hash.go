package dsl

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/ignore"
	"github.com/strata-build/strata/internal/ociindex"
	"github.com/strata-build/strata/internal/unixmode"
)

// sourceDigest is the content digest of an import: file contents, modes,
// symlink targets and folder structure, but not timestamps or host owners,
// so touching a file without changing it keeps the cache. It reads fsys.
func sourceDigest(fsys sourceFS, src Source) (digest.Digest, error) {
	switch s := src.(type) {
	case *LocalSource:
		if err := statKind(fsys, s.Path, s.Want); err != nil {
			return "", err
		}
		// The import copies what the path names, so a symlinked file or
		// folder is hashed by its target's content, not by the link.
		root, err := evalSymlinks(fsys, s.Path)
		if err != nil {
			return "", err
		}
		var m *ignore.Matcher
		if s.Want == KindDir {
			if m, err = ignore.Compile(s.Exclude); err != nil {
				return "", fmt.Errorf("dsl.Dir at %s: %w", s.pos, err)
			}
		}
		h := sha256.New()
		copied := func(dir fs.FS, fn fs.WalkDirFunc) error { return ignore.Walk(dir, m, fn) }
		if err := hashTree(fsys, h, root, copied); err != nil {
			return "", err
		}
		return digest.NewDigest(digest.SHA256, h), nil
	default:
		return "", fmt.Errorf("unsupported source %T", src)
	}
}

// fileDigest is the sha256 of the bytes of the file at path in fsys, as
// known reads it (when not nil) or read now.
func fileDigest(fsys sourceFS, path string, known FileDigests) (digest.Digest, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var info fs.FileInfo
	if known != nil {
		// The times are those before the read: a change during it moves
		// the change time, and the next build reads the file again.
		if info, err = f.Stat(); err != nil {
			return "", err
		}
		if d, ok := known.Digest(path, info); ok {
			return d, nil
		}
	}
	d, err := digest.SHA256.FromReader(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if known != nil {
		known.Remember(path, info, d)
	}
	return d, nil
}

// hashTree hashes the file or folder at root in fsys. A folder is walked
// by walk: for an import, as the sandbox's copy walks it (ignore.Walk),
// so that the digest covers exactly what the import copies; for a bind,
// which the steps see whole, by wholeTree.
func hashTree(fsys sourceFS, h hash.Hash, root string, walk func(fs.FS, fs.WalkDirFunc) error) error {
	fi, err := fsys.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		if err := hashEntry(h, ".", fi, func() (io.ReadCloser, error) { return fsys.Open(root) }, nil); err != nil {
			return fmt.Errorf("%s: %w", root, err)
		}
		return nil
	}
	// Read as an os.Root reads it, the sandbox's way: a symlink inside the
	// folder is hashed as a link and never followed out of it.
	dir := newRootFS(fsys, root)
	return walk(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		err = hashEntry(h, name, info,
			func() (io.ReadCloser, error) { return dir.Open(name) },
			func() (string, error) { return dir.ReadLink(name) })
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(root, name), err)
		}
		return nil
	})
}

// wholeTree walks all of a folder, .git, stores and layouts included.
func wholeTree(dir fs.FS, fn fs.WalkDirFunc) error { return fs.WalkDir(dir, ".", fn) }

// hashEntry writes one entry: its path, mode and type, then a symlink's
// target or a file's size and bytes.
func hashEntry(h hash.Hash, name string, info fs.FileInfo, open func() (io.ReadCloser, error), readlink func() (string, error)) error {
	fmt.Fprintf(h, "%q %o %s\n", name, unixmode.Bits(info.Mode()), info.Mode().Type())
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := readlink()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "-> %q\n", target)
	case info.Mode().IsRegular():
		f, err := open()
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%d\n", info.Size())
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	return nil
}

// layoutDigest returns the digest of the manifest tagged tag in the OCI
// layout at dir. A tag that names an image index (what `skopeo copy --all`
// and buildx write) is resolved, through nested indexes, to the manifest
// of this machine's platform, as the build resolves it (both use
// ociindex.Resolve): the cache key then names the image actually built on,
// and the build's check that the base did not change compares a manifest
// digest with a manifest digest. It reads fsys.
func layoutDigest(fsys sourceFS, dir, tag string) (digest.Digest, error) {
	b, err := readFile(fsys, filepath.Join(dir, "index.json"))
	if err != nil {
		return "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	var idx struct {
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return "", fmt.Errorf("OCI layout %s: index.json: %w", dir, err)
	}
	platform, _ := ociindex.ParsePlatform("")
	if m, ok := ociindex.Tagged(idx.Manifests, tag, platform); ok {
		// The digest goes into the cache key as the base's identity: one
		// that is not a digest would only fail at build time.
		if err := m.Digest.Validate(); err != nil {
			return "", fmt.Errorf("OCI layout %s: index.json: image tagged %q has digest %q: %w", dir, tag, m.Digest, err)
		}
		d, _, err := ociindex.Resolve(m, platform, func(d v1.Descriptor) (io.ReadCloser, error) {
			return fsys.Open(ociindex.LayoutBlobPath(dir, d.Digest))
		})
		if err != nil {
			return "", fmt.Errorf("OCI layout %s: tag %q: %w", dir, tag, err)
		}
		return d.Digest, nil
	}
	var tags []string
	for _, m := range idx.Manifests {
		if name := m.Annotations[v1.AnnotationRefName]; name != "" {
			tags = append(tags, name)
		}
	}
	return "", fmt.Errorf("OCI layout %s has no image tagged %q (tags: %s)", dir, tag, strings.Join(tags, ", "))
}
