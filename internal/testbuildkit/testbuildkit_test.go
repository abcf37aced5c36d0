package testbuildkit

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The build must not need the network: FROM scratch and the builtin
// dockerfile frontend keep it offline.
func TestStartAndBuild(t *testing.T) {
	d := Start(t, Options{})
	if !strings.HasPrefix(d.Addr, "unix:///") || !strings.HasSuffix(d.Addr, "/buildkitd.sock") {
		t.Errorf("Addr = %q", d.Addr)
	}

	ctxDir := t.TempDir()
	const content = "hello from buildkit\n"
	writeFile(t, filepath.Join(ctxDir, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n")
	writeFile(t, filepath.Join(ctxDir, "hello.txt"), content)
	out := filepath.Join(t.TempDir(), "oci")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Buildctl, "--addr", d.Addr, "build",
		"--frontend", "dockerfile.v0",
		"--local", "context="+ctxDir,
		"--local", "dockerfile="+ctxDir,
		"--output", "type=oci,dest="+out+",tar=false",
	)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buildctl build: %v\n%s\n%s", err, b, logTail(d.LogPath))
	}

	var index ocispec.Index
	readJSON(t, filepath.Join(out, "index.json"), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json has %d manifests, want 1", len(index.Manifests))
	}
	var manifest ocispec.Manifest
	readJSON(t, blobPath(out, index.Manifests[0].Digest), &manifest)
	if len(manifest.Layers) != 1 {
		t.Fatalf("manifest has %d layers, want 1", len(manifest.Layers))
	}
	got, err := fileFromLayer(blobPath(out, manifest.Layers[0].Digest), manifest.Layers[0].MediaType, "hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got != content {
		t.Errorf("hello.txt = %q, want %q", got, content)
	}
}

func fileFromLayer(path, mediaType, name string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(mediaType, "+gzip") || strings.HasSuffix(mediaType, ".gzip"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(mediaType, "+zstd") || strings.HasSuffix(mediaType, ".zstd"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return "", errors.New(name + " not in layer " + path)
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(hdr.Name, "./") != name && strings.TrimPrefix(hdr.Name, "/") != name {
			continue
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, tr); err != nil {
			return "", err
		}
		return b.String(), nil
	}
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
