package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/runtime/display"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/fetch"
)

// importSources makes a host path of every import that is not a local
// file or folder, by step index: a URL's download (in the store, under
// its base name), or the path copied out of the built rootfs of the image
// FromImage names. done removes what was copied for this build.
func (b *builder) importSources(ctx context.Context, n *dsl.Node) (paths map[int]string, done func(), err error) {
	paths = map[int]string{}
	var tmp string
	done = func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	for idx, st := range n.Image.Steps() {
		if st.Import == nil {
			continue
		}
		fail := func(err error) error {
			return fmt.Errorf("image %q: import at %s to %s: %w", n.Name, st.Pos, st.Import.Dest, err)
		}
		switch src := st.Import.Source.(type) {
		case *dsl.URLSource:
			p, err := b.downloadImport(ctx, n.Name, src, n.Imports[idx])
			if err != nil {
				return nil, done, fail(err)
			}
			paths[idx] = p
		case *dsl.ImageSource:
			if tmp == "" {
				if tmp, err = os.MkdirTemp(filepath.Join(b.opts.Store.Root, "tmp"), n.Name+"-imports-"); err != nil {
					return nil, done, fail(err)
				}
			}
			p, err := b.imageImport(ctx, n.ImportNodes[idx], src, filepath.Join(tmp, fmt.Sprint(idx)))
			if err != nil {
				return nil, done, fail(err)
			}
			paths[idx] = p
		}
	}
	return paths, done, nil
}

// downloadImport returns the downloaded file of src, imported by image
// name, as a path whose base name is the URL's, which is how steps find it
// under dsl.ImportDir: a hard link to the blob, kept in the store's
// downloads/ folder.
func (b *builder) downloadImport(ctx context.Context, name string, src *dsl.URLSource, d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("URL %s: digest %q: %w", src.URL, d, err)
	}
	blob, err := fetch.Download(ctx, b.opts.Store, src.URL, d.Encoded(), b.downloadOptions(name, src.URL))
	if err != nil {
		return "", err
	}
	dst := filepath.Join(b.opts.Store.Root, "downloads", d.Encoded(), URLBase(src.URL))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() {
		if bi, err := os.Stat(blob); err == nil && os.SameFile(fi, bi) {
			return dst, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	// Link under a temporary name and rename over dst: two images that
	// import the same URL at once must both end up with a whole file.
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".link-")
	if err != nil {
		return "", err
	}
	tmp.Close()
	os.Remove(tmp.Name())
	if err := os.Link(blob, tmp.Name()); err != nil {
		return "", fmt.Errorf("URL %s: %w", src.URL, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("URL %s: %w", src.URL, err)
	}
	return dst, nil
}

// plainProgressEvery is how often plain output reports a download under
// way: often enough to show it moves, rarely enough not to flood CI logs.
// A variable so that tests need not wait.
var plainProgressEvery = 5 * time.Second

// downloadOptions are those of a download of url for image name: its
// bytes done and total go to the live display, or, in plain output, to a
// line every plainProgressEvery (so a download shorter than that prints
// nothing more than before).
func (b *builder) downloadOptions(name, url string) fetch.DownloadOptions {
	if d := b.opts.Progress; d != nil {
		return fetch.DownloadOptions{Progress: func(p fetch.Progress) {
			if p.Finished {
				d.State(name, "waiting") // until its steps run
				return
			}
			d.Downloading(name, p.Done, p.Total)
		}}
	}
	file := URLBase(url)
	start := time.Now()
	last, printed := start, false
	return fetch.DownloadOptions{Progress: func(p fetch.Progress) {
		now := time.Now()
		switch {
		case p.Finished && printed:
			b.con.printf("%s: downloaded %s (%s in %s)\n", name, file, bytesize.Format(p.Done), now.Sub(start).Round(100*time.Millisecond))
		case !p.Finished && now.Sub(last) >= plainProgressEvery:
			last, printed = now, true
			b.con.printf("%s: downloading %s: %s\n", name, file, display.Transferred(p.Done, p.Total))
		}
	}}
}

// URLBase is the last element of a URL's path, without query or fragment.
func URLBase(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if _, rest, ok := strings.Cut(u, "://"); ok {
		u = rest
	}
	_, p, _ := strings.Cut(u, "/")
	name := path.Base("/" + p)
	if name == "/" || name == "." || name == ".." {
		return "download"
	}
	return name
}

// imageImport copies path out of the built rootfs of producer into dir,
// under the path's base name.
func (b *builder) imageImport(ctx context.Context, producer *dsl.Node, src *dsl.ImageSource, dir string) (string, error) {
	if producer == nil {
		return "", fmt.Errorf("image %s is not in the build graph", src.Image.Name())
	}
	layers, err := b.built(ctx, producer)
	if err != nil {
		return "", err
	}
	slices.Reverse(layers) // bottom first
	name := path.Base(path.Clean(src.Path))
	if name == "/" {
		name = "rootfs"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	// Special: the copy stays in the private store until the import step
	// copies it into the image, which is where set-id bits belong.
	if err := storage.ExtractDirs(ctx, layers, src.Path, dst, storage.ExtractOptions{Special: true}); err != nil {
		if errors.Is(err, storage.ErrNotInImage) {
			return "", fmt.Errorf("%s is not in image %s: %w", src.Path, producer.Name, err)
		}
		return "", fmt.Errorf("copy %s out of image %s: %w", src.Path, producer.Name, err)
	}
	return dst, nil
}
