package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// treeState describes every entry of a folder: type, mode, owner, size,
// times and xattrs, to tell whether anything touched it.
func treeState(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v %d:%d %d %d.%d %d.%d", rel, info.Mode(), st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		buf := make([]byte, 4096)
		if n, err := unix.Llistxattr(p, buf); err == nil && n > 0 {
			line += " xattrs=" + strings.ReplaceAll(string(buf[:n]), "\x00", ",")
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestEncodeLayerDirRootless encodes a committed layer folder the way a
// rootless store does (the commit finisher in a sandbox without steps
// reading the layer folder from inside the user namespace) and checks that the folder is left
// exactly as it was and that the blob equals a direct encoding.
func TestEncodeLayerDirRootless(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("maps ids of a user namespace directly, which needs root")
	}
	ctx := context.Background()
	st, err := storage.Open(ctx, t.TempDir(), storage.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := st.LayerDir("k-test")
	p := func(s string) string { return filepath.Join(dir, s) }
	for _, d := range []string{"etc/app", "var/opq"} {
		if err := os.MkdirAll(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(p("etc/app/conf"), []byte("k=v\n"), 0o644)
	os.WriteFile(p("owned"), []byte("x"), 0o600)
	os.Lchown(p("owned"), 1000, 1000)
	os.Symlink("app/conf", p("etc/link"))
	if err := unix.Mknod(p("etc/gone"), unix.S_IFCHR|0o600, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p("var/opq"), "user.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, dir)

	// The identity map: the layer reads the same inside and outside, so
	// the sandboxed encoding must equal the direct one byte for byte.
	ids := []sandbox.IDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	s := &stack{store: st, uids: ids, gids: ids, epoch: 1700000000}
	ws, err := st.NewWorkspace("enc")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Discard()
	blobs, err := s.encodeLayerDir(ctx, "enc", dir, ws, []layertype.Type{layertype.TarGzip, layertype.Squashfs})
	if err != nil {
		t.Fatal(err)
	}
	if after := treeState(t, dir); after != before {
		t.Errorf("encoding in a sandbox changed the layer folder:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if len(blobs) != 2 {
		t.Fatalf("got %d blobs", len(blobs))
	}
	direct, err := layer.Write(ctx, dir, layertype.TarGzip, filepath.Join(t.TempDir(), "blob"), layer.WriteOptions{SourceDateEpoch: unixTime(1700000000), UserXattr: true})
	if err != nil {
		t.Fatal(err)
	}
	if blobs[0].Descriptor.Digest != direct.Digest {
		t.Errorf("sandboxed tar+gzip %s, direct %s", blobs[0].Descriptor.Digest, direct.Digest)
	}
	if blobs[1].Descriptor.MediaType != layer.MediaTypeSquashfsZstd {
		t.Errorf("squashfs blob: %+v", blobs[1])
	}
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }
