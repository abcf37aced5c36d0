package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/storage/layer"
)

func TestLockWaitsOrFails(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files, so a second Open in this process
	// contends just like a second strata process would.
	_, err = Open(ctx, root, OpenOptions{NoWait: true})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second open with NoWait: %v", err)
	}
	var log strings.Builder
	done := make(chan error, 1)
	go func() {
		s2, err := Open(ctx, root, OpenOptions{Log: &log})
		if err == nil {
			s2.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("second open did not wait: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	s.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "waiting for store") {
		t.Errorf("waiting open said %q", log.String())
	}
	// Different stores never wait for each other.
	a, err := Open(ctx, filepath.Join(root, "a"), OpenOptions{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, filepath.Join(root, "b"), OpenOptions{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestCommitLookupAndDrop(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, err := s.NewWorkspace("img")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ws.Upper, "file"), []byte("x"), 0o644)
	blob := filepath.Join(ws.Out, "blob")
	os.WriteFile(blob, []byte("layer"), 0o644)
	d := digest.FromString("layer")
	key := digest.FromString("key")
	rec, err := s.Commit(ws, Record{Key: key, Image: "img"}, []CommitBlob{{Path: blob, LayerBlob: LayerBlob{Type: "tar+gzip", Descriptor: v1.Descriptor{Digest: d, Size: 5}, DiffID: d.String()}}})
	if err != nil {
		t.Fatal(err)
	}
	got, dropped, err := s.Lookup(key)
	if err != nil || got == nil || dropped != "" {
		t.Fatalf("Lookup = %v, %q, %v", got, dropped, err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.LayerDir(rec.LayerDir), "file")); string(b) != "x" {
		t.Error("layer folder lacks the upper dir's file")
	}
	if s.Last("img") == nil {
		t.Error("no last record for img")
	}
	// A record whose blob is gone is dropped, not trusted.
	os.Remove(s.BlobPath(d.String()))
	got, dropped, err = s.Lookup(key)
	if err != nil || got != nil || !strings.Contains(dropped, "blob") {
		t.Fatalf("Lookup after losing the blob = %v, %q, %v", got, dropped, err)
	}
	if _, err := os.Stat(s.recordPath(key)); !os.IsNotExist(err) {
		t.Error("the dropped record is still on disk")
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := s.NewWorkspace("x")
	ro := filepath.Join(ws.Upper, "ro")
	os.Mkdir(ro, 0o755)
	os.WriteFile(filepath.Join(ro, "f"), nil, 0o644)
	os.Chmod(ro, 0o500)
	s.Close()
	s, err = Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if entries, _ := os.ReadDir(filepath.Join(root, "tmp")); len(entries) != 0 {
		t.Errorf("tmp keeps %d entries", len(entries))
	}
}

// layoutFixture is a store and an output layout (at out) for layout
// tests, closed when the test ends, and put, which stores a small image
// whose config differs by env.
func layoutFixture(t *testing.T) (s *Store, l *Layout, out string, put func(env string) v1.Descriptor) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	out = filepath.Join(t.TempDir(), "oci")
	if l, err = OpenLayout(out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	put = func(env string) v1.Descriptor {
		t.Helper()
		d, err := s.PutImage(ctx, ImageSpec{Config: v1.ImageConfig{Env: []string{env}}, Created: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return s, l, out, put
}

func TestLayoutTagIsStableAndSorted(t *testing.T) {
	ctx := context.Background()
	s, l, out, put := layoutFixture(t)
	a, b := put("A=1"), put("B=1")
	if a2 := put("A=1"); a2.Digest != a.Digest {
		t.Fatal("the same spec gave two manifest digests")
	}
	for _, tag := range []struct {
		name string
		d    v1.Descriptor
	}{{"zeta", b}, {"alpha", a}} {
		if err := l.Tag(ctx, s, tag.name, tag.d); err != nil {
			t.Fatal(err)
		}
	}
	idx1, _ := os.ReadFile(filepath.Join(out, "index.json"))
	fi1, _ := os.Stat(filepath.Join(out, "index.json"))
	if err := l.Tag(ctx, s, "alpha", a); err != nil {
		t.Fatal(err)
	}
	idx2, _ := os.ReadFile(filepath.Join(out, "index.json"))
	fi2, _ := os.Stat(filepath.Join(out, "index.json"))
	if string(idx1) != string(idx2) || !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Error("re-tagging the same image rewrote index.json")
	}
	tags, _ := l.Tags(ctx)
	if strings.Join(tags, ",") != "alpha,zeta" {
		t.Errorf("tags = %v", tags)
	}
	if strings.Index(string(idx1), "alpha") > strings.Index(string(idx1), "zeta") {
		t.Error("index entries are not sorted by tag")
	}
	// Retagging moves the tag; GC drops what nothing references.
	if err := l.Tag(ctx, s, "zeta", a); err != nil {
		t.Fatal(err)
	}
	if err := l.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "blobs", "sha256", b.Digest.Encoded())); !os.IsNotExist(err) {
		t.Error("GC kept the unreferenced manifest")
	}
}

func TestMalformedDigestsNeverNameAPathOutside(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evil := "sha256:" + strings.Repeat("../", 20) + "etc"
	if p := s.BlobPath(evil); !strings.HasPrefix(p, s.Root) || strings.Contains(p, "/etc") {
		t.Errorf("BlobPath(%q) = %s", evil, p)
	}
	if _, err := s.Unpacked(ctx, v1.Descriptor{Digest: digest.Digest(evil), MediaType: v1.MediaTypeImageLayerGzip}, layer.UnpackOptions{}); err == nil {
		t.Error("Unpacked accepted a digest that climbs out of the store")
	}
}

// TestStoreIsPrivate: the store holds images' setuid binaries unpacked, so
// other local users must not reach into it.
func TestStoreIsPrivate(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	st, err := Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, d := range []string{"", "layers", "caches", "tmp", "sessions", "logs", "cache"} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("store folder %q: %v %v, want mode 0700", d, fi.Mode(), err)
		}
	}
	// A store of an earlier version is tightened; a shared folder named
	// as a store keeps its own mode.
	os.Chmod(root, 0o755)
	os.Chmod(filepath.Join(root, "layers"), 0o755)
	st, err = Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, d := range []string{"", "layers"} {
		if fi, _ := os.Stat(filepath.Join(root, d)); fi.Mode().Perm() != 0o700 {
			t.Errorf("old store folder %q keeps mode %v", d, fi.Mode())
		}
	}
	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o755)
	os.Chmod(shared, os.ModeSticky|0o777)
	st, err = Open(ctx, shared, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("a shared folder used as a store changed mode to %v", fi.Mode())
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	st, err := Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live, err := st.NewSession("img")
	if err != nil {
		t.Fatal(err)
	}
	stale, err := st.NewSession("img")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// A killed strata run: its lock is gone, its folder is not.
	stale.Lock.Close()

	st, err = Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session of a killed run was kept: %v", err)
	}
	if _, err := os.Stat(live.Upper); err != nil {
		t.Errorf("a live session was removed: %v", err)
	}
	err = st.Destroy()
	if err == nil || !strings.Contains(err.Error(), "in use by pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("Destroy with a live session: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("Destroy refused but removed the store: %v", err)
	}
	if err := live.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Discard left %s: %v", live.Dir, err)
	}
	st, err = Open(ctx, root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Destroy(); err != nil {
		t.Errorf("Destroy after the session ended: %v", err)
	}
}
