package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// fuzzLayer is the one fixed blob of the fuzzed layouts. ImportLayout
// copies layers without reading them, so it is a config too: a config
// blob can then be a manifest naming it, for a nested index to resolve.
var fuzzLayer = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)

// fuzzLayout writes an OCI layout into dir from the fuzzed index.json,
// manifest and config. Each blob is stored under its own digest, and the
// placeholders @LAYER@, @CONFIG@, @MANIFEST@ (and @..._SIZE@) are replaced
// by the digest and size of the blob they name before the blob that holds
// them is hashed: the fuzzer then mutates documents whose references hold,
// and reaches past the digest checks.
func fuzzLayout(t testing.TB, dir string, index, manifest, config []byte) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) {
		sum := sha256.Sum256(b)
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", hex.EncodeToString(sum[:])), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	refer := func(doc []byte, name string, blob []byte) []byte {
		doc = bytes.ReplaceAll(doc, []byte("@"+name+"@"), []byte(digest.FromBytes(blob)))
		return bytes.ReplaceAll(doc, []byte("@"+name+"_SIZE@"), []byte(strconv.Itoa(len(blob))))
	}
	put(fuzzLayer)
	config = refer(config, "LAYER", fuzzLayer)
	put(config)
	manifest = refer(refer(manifest, "CONFIG", config), "LAYER", fuzzLayer)
	put(manifest)
	index = refer(index, "MANIFEST", manifest)
	for name, b := range map[string][]byte{"index.json": index, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeSum lists every file of dir with its mode and content, to see that
// reading a layout changed nothing in it.
func treeSum(t testing.TB, dir string) string {
	var b bytes.Buffer
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b.WriteString(p + " " + info.Mode().String())
		if d.Type().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + digest.FromBytes(c).String())
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// FuzzImportLayout reads a base image from an OCI layout made of the
// fuzzed index.json, manifest and config, as a build on dsl.Layout does.
// It must return within a bound, an error or an image; an image's
// manifest, config and layers must all be in the store's blob store under
// their digests with matching content; and reading may write into the
// store only: the layout is left as it was and nothing appears beside
// the two.
func FuzzImportLayout(f *testing.F) {
	const (
		index    = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@MANIFEST@","size":@MANIFEST_SIZE@,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}`
		manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@CONFIG@","size":@CONFIG_SIZE@},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"@LAYER@","size":@LAYER_SIZE@}]}`
		config   = `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["@LAYER@"]},"config":{"Env":["PATH=/bin"]}}`
		// A multi-platform index as the tagged entry: the manifest blob
		// is an index naming the config blob as a manifest, whose config
		// is the fixed blob.
		nested     = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"@MANIFEST@","size":@MANIFEST_SIZE@,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}`
		innerIndex = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@CONFIG@","size":@CONFIG_SIZE@,"platform":{"os":"linux","architecture":"amd64"}}]}`
	)
	f.Add([]byte(index), []byte(manifest), []byte(config))
	f.Add([]byte(nested), []byte(innerIndex), []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"@LAYER@","size":@LAYER_SIZE@},"layers":[]}`))
	f.Add([]byte(index), []byte(`{"schemaVersion":2,"config":{"digest":"sha256:../../../../etc/passwd","size":1},"layers":[{"digest":"@LAYER@","size":1099511627776}]}`), []byte(config))
	f.Add([]byte(index), []byte(`{"config":{"digest":"@CONFIG@"},"layers":[{"digest":"sha512:@LAYER@"},{"digest":""}]}`), []byte(`{}`))
	f.Add([]byte(`{"manifests":[{"digest":"sha256:`+string(bytes.Repeat([]byte("0"), 64))+`","annotations":{"org.opencontainers.image.ref.name":"t"}}]}`), []byte(manifest), []byte(config))
	f.Add([]byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"@MANIFEST@","annotations":{"org.opencontainers.image.ref.name":"../t"}}]}`), []byte(manifest), []byte(config))
	f.Add([]byte(`{`), []byte(``), []byte(`null`))
	f.Fuzz(func(t *testing.T, index, manifest, config []byte) {
		box := t.TempDir()
		dir := filepath.Join(box, "layout")
		fuzzLayout(t, dir, index, manifest, config)
		before := treeSum(t, dir)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := Open(ctx, filepath.Join(box, "store"), OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()

		type result struct {
			img *BaseImage
			err error
		}
		done := make(chan result, 1)
		go func() {
			img, err := st.ImportLayout(ctx, dir, "t")
			done <- result{img, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("ImportLayout of index %q, manifest %q, config %q still runs after 30s", index, manifest, config)
		}

		if after := treeSum(t, dir); after != before {
			t.Fatalf("reading the layout changed it:\n%s\nwas\n%s", after, before)
		}
		ents, err := os.ReadDir(box)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "layout" && e.Name() != "store" {
				t.Fatalf("ImportLayout wrote %s beside the layout and the store", e.Name())
			}
		}
		if r.err != nil {
			return
		}
		img := r.img
		for _, d := range append([]digest.Digest{img.Descriptor.Digest, img.Manifest.Config.Digest}, layerDigests(img)...) {
			b, err := os.ReadFile(st.BlobPath(d.String()))
			if err != nil {
				t.Fatalf("image accepted from index %q, manifest %q, config %q: blob %s is not in the store: %v", index, manifest, config, d, err)
			}
			if got := digest.FromBytes(b); got != d {
				t.Fatalf("image accepted from index %q, manifest %q, config %q: stored blob %s holds %s", index, manifest, config, d, got)
			}
		}
	})
}

func layerDigests(img *BaseImage) []digest.Digest {
	var out []digest.Digest
	for _, l := range img.Manifest.Layers {
		out = append(out, l.Digest)
	}
	return out
}
