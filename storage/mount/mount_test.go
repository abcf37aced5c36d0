package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/testuser"
	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/storage/layer"
)

// The test image, in overlay form: layer 1 deletes etc/del with a char 0/0
// whiteout and makes opq opaque (hiding opq/basefile), layer 2 adds files.
// merged is what its mount must show.
var (
	testLayers = []map[string]string{
		{
			"etc/":         "d 0755",
			"etc/a":        "f 0644 one",
			"etc/del":      "f 0644 gone",
			"opq/":         "d 0755",
			"opq/basefile": "f 0644 base",
			"opq/sub/":     "d 0755",
			"keep/":        "d 0755",
			"keep/k":       "f 0644 k",
			"bin/":         "d 0755",
			"bin/tool":     "f 0755 #!/bin/sh",
		},
		{
			"etc/":        "d 0755",
			"etc/del":     "w",
			"etc/b":       "f 0600 two",
			"opq/":        "d 0755 opaque",
			"opq/newfile": "f 0644 new",
		},
		{
			"c":          "f 0644 three",
			"link":       "l etc/a",
			"keep/":      "d 0750",
			"keep/k2":    "f 0644 k2",
			"deep/x/y/":  "d 0755",
			"deep/x/y/z": "f 0444 zz",
		},
	}
	merged = map[string]string{
		".":           "d 0755",
		"etc":         "d 0755",
		"etc/a":       "f 0644 one",
		"etc/b":       "f 0600 two",
		"opq":         "d 0755",
		"opq/newfile": "f 0644 new",
		"keep":        "d 0750",
		"keep/k":      "f 0644 k",
		"keep/k2":     "f 0644 k2",
		"bin":         "d 0755",
		"bin/tool":    "f 0755 #!/bin/sh",
		"c":           "f 0644 three",
		"link":        "l etc/a",
		"deep":        "d 0755",
		"deep/x":      "d 0755",
		"deep/x/y":    "d 0755",
		"deep/x/y/z":  "f 0444 zz",
	}
)

// writeTree writes one layer folder from its description (as root: the
// whiteout and the trusted xattr need it).
func writeTree(t testing.TB, dir string, tree map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var dirModes [][2]string
	for _, k := range keys {
		p := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f := strings.SplitN(tree[k], " ", 3)
		var err error
		switch f[0] {
		case "d":
			err = os.MkdirAll(p, 0o755)
			dirModes = append(dirModes, [2]string{p, f[1]})
			if len(f) == 3 && f[2] == "opaque" {
				for _, ns := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
					if err == nil {
						err = unix.Lsetxattr(p, ns, []byte("y"), 0)
					}
				}
			}
		case "f":
			err = os.WriteFile(p, []byte(f[2]), 0o644)
			if err == nil {
				m, _ := strconv.ParseUint(f[1], 8, 32)
				err = os.Chmod(p, fs.FileMode(m))
			}
		case "l":
			err = os.Symlink(f[1], p)
		case "w":
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dirModes {
		m, _ := strconv.ParseUint(d[1], 8, 32)
		if err := os.Chmod(d[0], fs.FileMode(m)); err != nil {
			t.Fatal(err)
		}
	}
}

// buildLayers encodes the test layers as kind ("squashfs", "erofs" or
// "mixed": an erofs base under squashfs layers) in dir and appends verity
// trees to all but the top layer, which stays without one.
func buildLayers(t testing.TB, dir, kind string) []Layer {
	t.Helper()
	var out []Layer
	for i, tree := range testLayers {
		src := filepath.Join(dir, fmt.Sprintf("%s-src%d", kind, i))
		writeTree(t, src, tree)
		blob := filepath.Join(dir, fmt.Sprintf("%s-layer%d", kind, i))
		var cmd *exec.Cmd
		mt := layer.MediaTypeSquashfsZstd
		if kind == "erofs" || kind == "mixed" && i == 0 {
			mt = layer.MediaTypeErofsLZ4HC
			cmd = exec.Command("mkfs.erofs", "-zlz4hc", "-T0", blob, src)
		} else {
			cmd = exec.Command("mksquashfs", src, blob, "-noappend", "-comp", "zstd", "-all-time", "0", "-no-progress", "-quiet")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, out)
		}
		l := Layer{Path: blob, MediaType: mt}
		if i < len(testLayers)-1 {
			root, err := verity.Append(blob)
			if err != nil {
				t.Fatal(err)
			}
			l.RootHash = root
			// For TestMountRootlessInner, which mounts these blobs.
			if err := os.WriteFile(blob+".root", []byte(root), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(blob, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// readTree describes the tree under dir as merged does.
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := fmt.Sprintf("%04o", info.Mode().Perm())
		switch {
		case d.IsDir():
			got[rel] = "d " + perm
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = "l " + target
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = "f " + perm + " " + string(b)
		default:
			got[rel] = "? " + info.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return got
}

func checkMerged(t testing.TB, dir string) {
	t.Helper()
	if diff := cmp.Diff(merged, readTree(t, dir)); diff != "" {
		t.Errorf("merged tree on %s (-want +got):\n%s", dir, diff)
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644); err == nil {
		t.Errorf("the merged mount took a write")
	}
}

// noMounts fails when anything under dir is mounted.
func noMounts(t testing.TB, dir string) {
	t.Helper()
	ms, err := mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Target == dir || strings.HasPrefix(m.Target, dir+"/") {
			t.Errorf("left mounted: %s (%s)", m.Target, m.FSType)
		}
	}
}

// noLoops fails when a loop device is still bound to a file under dir.
func noLoops(t testing.TB, dir string) {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.HasPrefix(string(b), dir+"/") {
			t.Errorf("loop device left bound: %s -> %s", f, bytes.TrimSpace(b))
		}
	}
}

// noRecords fails when StateDir/mounts holds anything.
func noRecords(t testing.TB, stateDir string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(stateDir, "mounts"))
	for _, e := range ents {
		t.Errorf("left in the state folder: mounts/%s", e.Name())
	}
}

// fuseProcs lists the FUSE daemons uid runs on something under dir.
func fuseProcs(uid int, dir string) []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		name, owner := "", -1
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "Name:":
				name = f[1]
			case len(f) >= 2 && f[0] == "Uid:":
				owner, _ = strconv.Atoi(f[1])
			}
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(st), "cmdline"))
		if owner == uid && (name == "squashfuse" || name == "fuse-overlayfs") && bytes.Contains(cmdline, []byte(dir+"/")) {
			out = append(out, filepath.Base(filepath.Dir(st))+" "+name)
		}
	}
	return out
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// mountAndCheck mounts layers on a new folder under base, compares the
// merged tree, unmounts and checks that nothing is left.
func mountAndCheck(t *testing.T, base string, layers []Layer, opts Options) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(base, "mnt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opts.Log = &log
	if err := Mount(ctx, layers, dir, opts); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	mounted := true
	defer func() {
		if mounted {
			Unmount(ctx, dir, opts)
		}
	}()
	t.Logf("log: %s", log.String())
	checkMerged(t, dir)
	if err := Unmount(ctx, dir, opts); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	mounted = false
	noMounts(t, base)
	noMounts(t, opts.StateDir)
	noRecords(t, opts.StateDir)
}

func TestMountKernel(t *testing.T) {
	requireRoot(t)
	for _, kind := range []string{"squashfs", "erofs", "mixed"} {
		t.Run(kind, func(t *testing.T) {
			tmp := t.TempDir()
			layers := buildLayers(t, tmp, kind)
			state := filepath.Join(tmp, "state")
			var log bytes.Buffer
			dir := filepath.Join(tmp, "mnt")
			os.Mkdir(dir, 0o755)
			if err := Mount(context.Background(), layers, dir, Options{StateDir: state, Log: &log}); err != nil {
				t.Fatal(err)
			}
			if got, _ := mountedAt(dir); got != "overlay" {
				t.Errorf("%s has %q mounted, want overlay", dir, got)
			}
			if !haveDM() && !strings.Contains(log.String(), noDMNotice) {
				t.Errorf("log lacks the user-space verification notice: %q", log.String())
			}
			checkMerged(t, dir)
			if err := Unmount(context.Background(), dir, Options{StateDir: state}); err != nil {
				t.Fatal(err)
			}
			noMounts(t, tmp)
			noLoops(t, tmp)
			noRecords(t, state)
		})
	}
}

// TestMountOneLayer mounts a one-layer image, which overlayfs accepts only
// with a second (empty) lower dir.
func TestMountOneLayer(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	layers := buildLayers(t, tmp, "squashfs")[:1]
	dir := filepath.Join(tmp, "mnt")
	os.Mkdir(dir, 0o755)
	opts := Options{StateDir: filepath.Join(tmp, "state")}
	if err := Mount(context.Background(), layers, dir, opts); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/del")); err != nil || string(b) != "gone" {
		t.Errorf("etc/del of the base: %q, %v", b, err)
	}
	if err := Unmount(context.Background(), dir, opts); err != nil {
		t.Fatal(err)
	}
	noMounts(t, tmp)
	noLoops(t, tmp)
}

// TestMountForcedRootless runs the FUSE mode as root (Options.Rootless).
func TestMountForcedRootless(t *testing.T) {
	requireRoot(t)
	for _, kind := range []string{"squashfs", "erofs"} {
		t.Run(kind, func(t *testing.T) {
			tmp := t.TempDir()
			layers := buildLayers(t, tmp, kind)
			mountAndCheck(t, tmp, layers, Options{Rootless: true, StateDir: filepath.Join(tmp, "state")})
			if p := fuseProcs(0, tmp); len(p) > 0 {
				t.Errorf("FUSE daemons left: %v", p)
			}
		})
	}
}

// TestMountCorrupt flips a byte of a layer's file system: Mount must fail
// on verity and leave nothing behind.
func TestMountCorrupt(t *testing.T) {
	requireRoot(t)
	for _, rootless := range []bool{false, true} {
		t.Run(fmt.Sprintf("rootless=%v", rootless), func(t *testing.T) {
			tmp := t.TempDir()
			layers := buildLayers(t, tmp, "squashfs")
			f, err := os.OpenFile(layers[1].Path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			f.ReadAt(b[:], 200)
			b[0] ^= 0x40
			f.WriteAt(b[:], 200)
			f.Close()
			dir := filepath.Join(tmp, "mnt")
			os.Mkdir(dir, 0o755)
			state := filepath.Join(tmp, "state")
			err = Mount(context.Background(), layers, dir, Options{Rootless: rootless, StateDir: state})
			if !errors.Is(err, verity.ErrMismatch) {
				t.Fatalf("Mount of a corrupt layer: %v, want verity.ErrMismatch", err)
			}
			if !strings.Contains(err.Error(), "layer 1 (") {
				t.Errorf("the error does not name layer 1: %v", err)
			}
			t.Log(err)
			noMounts(t, tmp)
			noLoops(t, tmp)
			noRecords(t, state)
		})
	}
}

// TestInspect checks stacker's rules on what follows a layer's file system.
func TestInspect(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("needs mksquashfs")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d/f"), []byte("x"), 0o644)
	blob := filepath.Join(tmp, "blob")
	if out, err := exec.Command("mksquashfs", src, blob, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	check := func(l Layer, want string) {
		t.Helper()
		_, b, err := openVerified(3, l, true)
		if want == "" {
			if err != nil {
				t.Errorf("%+v: %v", l, err)
			}
			if b.hashOffset%verity.BlockSize != 0 || b.hashOffset > b.size {
				t.Errorf("hash offset %d for a blob of %d", b.hashOffset, b.size)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "layer 3 (") {
			t.Errorf("%+v: %v, want an error about %q naming layer 3", l, err, want)
		}
	}
	plain := Layer{Path: blob, MediaType: layer.MediaTypeSquashfs}
	check(plain, "")
	check(Layer{Path: blob, MediaType: layer.MediaTypeSquashfs, RootHash: strings.Repeat("ab", 32)}, "no tree")
	check(Layer{Path: blob, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip"}, "not a squashfs")
	root, err := verity.Append(blob)
	if err != nil {
		t.Fatal(err)
	}
	check(Layer{Path: blob, MediaType: layer.MediaTypeSquashfs, RootHash: root}, "")
	check(plain, "no verity root hash")
	check(Layer{Path: blob, MediaType: layer.MediaTypeErofs, RootHash: root}, "no erofs superblock")
	check(Layer{Path: blob, MediaType: layer.MediaTypeSquashfs, RootHash: "../x"}, "not a sha256")
}

// mountedSquashfs mounts the three squashfs test layers in the kernel
// mode on a fresh folder.
func mountedSquashfs(t *testing.T) (tmp string, layers []Layer, dir string, opts Options) {
	t.Helper()
	requireRoot(t)
	tmp = t.TempDir()
	layers = buildLayers(t, tmp, "squashfs")
	dir = filepath.Join(tmp, "mnt")
	os.Mkdir(dir, 0o755)
	opts = Options{StateDir: filepath.Join(tmp, "state")}
	if err := Mount(context.Background(), layers, dir, opts); err != nil {
		t.Fatal(err)
	}
	return tmp, layers, dir, opts
}

// TestMountTwice checks the refusals: mounting on a strata mount and
// unmounting a folder that is none.
func TestMountTwice(t *testing.T) {
	tmp, layers, dir, opts := mountedSquashfs(t)
	ctx := context.Background()
	err := Mount(ctx, layers, dir+"/.", opts)
	if !errors.Is(err, ErrMounted) {
		t.Errorf("second Mount on %s: %v, want ErrMounted", dir, err)
	}
	// The failed second mount must not have touched the first.
	checkMerged(t, dir)
	if err := Unmount(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	err = Unmount(ctx, dir, opts)
	if !errors.Is(err, ErrNotMounted) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Unmount of a plain folder: %v, want ErrNotMounted naming it", err)
	}
	noMounts(t, tmp)
	noLoops(t, tmp)
}

// TestUnmountVanished unmounts pieces behind strata's back; Unmount must
// still clean up the rest and the record.
func TestUnmountVanished(t *testing.T) {
	tmp, _, dir, opts := mountedSquashfs(t)
	ctx := context.Background()
	_, work := paths(opts.StateDir, dir)
	for _, p := range []string{dir, filepath.Join(work, "layers", "1")} {
		if err := unix.Unmount(p, 0); err != nil {
			t.Fatalf("unmount %s: %v", p, err)
		}
	}
	if err := Unmount(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	noMounts(t, tmp)
	noLoops(t, tmp)
	noRecords(t, opts.StateDir)
}

const (
	rootlessUser  = "stratatest"
	rootlessDirEV = "STRATA_MOUNT_ROOTLESS_DIR"
)

// TestMountRootless re-runs this test binary as an unprivileged user (see
// TestMountRootlessInner) on layers built here, as root, and checks that
// no mount or FUSE daemon outlives it.
func TestMountRootless(t *testing.T) {
	requireRoot(t)
	if os.Getenv(rootlessDirEV) != "" {
		t.Skip("inner run")
	}
	for _, tool := range []string{"runuser", "useradd", "squashfuse", "fuse-overlayfs", "fusermount3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	uid := testuser.Ensure(t, rootlessUser, false)
	grantFUSE(t)

	base, err := os.MkdirTemp("", "strata-mount-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	for _, kind := range []string{"squashfs", "erofs"} {
		buildLayers(t, base, kind)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "mount.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(base, "w")
	os.Mkdir(work, 0o755)
	if out, err := exec.Command("chown", rootlessUser+":", work).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	cmd := exec.Command("runuser", "-u", rootlessUser, "--", bin, "-test.run", "^TestMountRootlessInner$", "-test.v")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), rootlessDirEV+"="+base)
	out, err := cmd.CombinedOutput()
	t.Logf("inner run as %s:\n%s", rootlessUser, out)
	if err != nil {
		t.Fatalf("inner run: %v", err)
	}
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Errorf("the inner run skipped")
	}
	noMounts(t, base)
	if p := fuseProcs(uid, base); len(p) > 0 {
		t.Errorf("FUSE daemons of %s left: %v", rootlessUser, p)
	}
}

// grantFUSE lets the test user open /dev/fuse for the test. udev makes it
// 0666 on a normal host, but a container's devtmpfs node is 0600, and
// libfuse (and fusermount3, which opens it as the calling user) then
// cannot mount at all. The mode is restored when the test ends.
func grantFUSE(t *testing.T) {
	t.Helper()
	st, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	if st.Mode().Perm()&0o006 == 0o006 {
		return
	}
	if err := os.Chmod("/dev/fuse", st.Mode().Perm()|0o006); err != nil {
		t.Fatal(err)
	}
	t.Logf("/dev/fuse is %v: opened to other users for the test (as udev does)", st.Mode().Perm())
	t.Cleanup(func() { os.Chmod("/dev/fuse", st.Mode().Perm()) })
}

// TestMountRootlessInner is the unprivileged half of TestMountRootless.
func TestMountRootlessInner(t *testing.T) {
	base := os.Getenv(rootlessDirEV)
	if base == "" {
		t.Skip("run by TestMountRootless")
	}
	if os.Geteuid() == 0 {
		t.Fatal("inner run is root")
	}
	ctx := context.Background()
	work := filepath.Join(base, "w")
	state := filepath.Join(work, "state")
	for _, kind := range []string{"squashfs", "erofs"} {
		t.Run(kind, func(t *testing.T) {
			layers := layersIn(base, kind)
			dir := filepath.Join(work, kind)
			os.Mkdir(dir, 0o755)
			var log bytes.Buffer
			opts := Options{StateDir: state, Log: &log}
			if err := Mount(ctx, layers, dir, opts); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { Unmount(ctx, dir, opts) })
			t.Logf("log: %s", log.String())
			if got, _ := mountedAt(dir); got != "fuse.fuse-overlayfs" {
				t.Errorf("%s has %q mounted, want fuse.fuse-overlayfs", dir, got)
			}
			if kind == "erofs" && !strings.Contains(log.String(), "extracted") {
				t.Errorf("the log does not say erofs layers are extracted: %q", log.String())
			}
			checkMerged(t, dir)
			if err := Unmount(ctx, dir, opts); err != nil {
				t.Fatal(err)
			}
			noMounts(t, work)
			noRecords(t, state)
			if p := fuseProcs(os.Getuid(), base); len(p) > 0 {
				t.Errorf("FUSE daemons left: %v", p)
			}
		})
	}
	t.Run("dead daemon", func(t *testing.T) {
		// A killed fuse-overlayfs leaves a dead mount (ENOTCONN) on the
		// folder, and a killed squashfuse one under it.
		dir := filepath.Join(work, "dead")
		os.Mkdir(dir, 0o755)
		opts := Options{StateDir: state}
		if err := Mount(ctx, layersIn(base, "squashfs"), dir, opts); err != nil {
			t.Fatal(err)
		}
		recPath, _ := paths(state, dir)
		b, _ := os.ReadFile(recPath)
		for _, name := range []string{`"fuse-overlayfs"`, `"squashfuse"`} {
			i := bytes.Index(b, []byte(name))
			j := bytes.LastIndex(b[:i], []byte(`"pid": `))
			pid, _ := strconv.Atoi(string(bytes.TrimRight(bytes.Fields(b[j+7:])[0], ",")))
			if pid <= 0 {
				t.Fatalf("no pid of %s in the record:\n%s", name, b)
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		if err := Unmount(ctx, dir, opts); err != nil {
			t.Fatal(err)
		}
		noMounts(t, work)
		noRecords(t, state)
		if p := fuseProcs(os.Getuid(), base); len(p) > 0 {
			t.Errorf("FUSE daemons left: %v", p)
		}
	})
}

// layersIn returns the layers buildLayers wrote in dir.
func layersIn(dir, kind string) []Layer {
	var out []Layer
	for i := range testLayers {
		blob := filepath.Join(dir, fmt.Sprintf("%s-layer%d", kind, i))
		l := Layer{Path: blob, MediaType: layer.MediaTypeSquashfsZstd}
		if kind == "erofs" {
			l.MediaType = layer.MediaTypeErofsLZ4HC
		}
		if root, err := os.ReadFile(blob + ".root"); err == nil {
			l.RootHash = string(root)
		}
		out = append(out, l)
	}
	return out
}

// TestErofsOpaqueDirs reads the opaque marks of erofs images whose xattrs
// are inline (one opaque folder) and shared (several, past mkfs.erofs's
// tolerance), under a folder spanning several blocks.
func TestErofsOpaqueDirs(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		t.Skip("needs mkfs.erofs")
	}
	for _, n := range []int{1, 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			tmp := t.TempDir()
			src := filepath.Join(tmp, "src")
			tree := map[string]string{"big/": "d 0755", "plain/": "d 0755", "plain/f": "f 0644 x"}
			for i := range 300 {
				tree[fmt.Sprintf("big/entry-with-a-long-name-%03d", i)] = "f 0644 "
			}
			var want []string
			for i := range n {
				d := fmt.Sprintf("big/o%d", i)
				tree[d+"/"] = "d 0755 opaque"
				tree[d+"/f"] = "f 0644 y"
				want = append(want, d)
			}
			writeTree(t, src, tree)
			// Only the user namespace's mark, as a rootless build writes.
			os.Mkdir(filepath.Join(src, "useronly"), 0o755)
			if err := unix.Lsetxattr(filepath.Join(src, "useronly"), "user.overlay.opaque", []byte("y"), 0); err != nil {
				t.Fatal(err)
			}
			want = append(want, "useronly")
			blob := filepath.Join(tmp, "blob")
			if out, err := exec.Command("mkfs.erofs", "-zlz4hc", "-T0", blob, src).CombinedOutput(); err != nil {
				t.Fatalf("mkfs.erofs: %v: %s", err, out)
			}
			f, err := os.Open(blob)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := layer.ErofsOpaqueDirs(f)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			sort.Strings(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("opaque folders (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOverlayManyLowers mounts overlays of more lower dirs than mount(2)'s
// one page of options can name in full, with both ways of mounting.
func TestOverlayManyLowers(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	var lowers []string
	for i := range 200 {
		d := filepath.Join(tmp, fmt.Sprintf("a-rather-long-folder-name-for-a-lower-dir-%03d", i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d", i)), nil, 0o644)
		lowers = append(lowers, d)
	}
	for name, mount := range map[string]func([]string, string) error{"fsopen": overlayNewAPI, "mount": overlayLegacy} {
		t.Run(name, func(t *testing.T) {
			target := filepath.Join(tmp, "mnt-"+name)
			os.Mkdir(target, 0o755)
			if err := mount(lowers, target); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(target, 0)
			ents, err := os.ReadDir(target)
			if err != nil || len(ents) != len(lowers) {
				t.Errorf("the overlay shows %d entries (%v), want %d", len(ents), err, len(lowers))
			}
		})
	}
}

// TestHashOffsetVeritysetup checks the hash offsets inspect computes from
// squashfs and erofs superblocks with veritysetup, in user space (no
// device-mapper needed), as the dm-verity mode will pass them.
func TestHashOffsetVeritysetup(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("veritysetup"); err != nil {
		t.Skip("needs veritysetup")
	}
	tmp := t.TempDir()
	for _, kind := range []string{"squashfs", "erofs"} {
		for i, l := range buildLayers(t, tmp, kind) {
			if l.RootHash == "" {
				continue
			}
			f, b, err := openVerified(i, l, false)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			out, err := exec.Command("veritysetup", "verify", l.Path, l.Path, l.RootHash,
				"--hash-offset="+strconv.FormatInt(b.hashOffset, 10)).CombinedOutput()
			if err != nil {
				t.Errorf("%s: veritysetup verify at %d: %v: %s", layerName(i, l), b.hashOffset, err, out)
			}
		}
	}
}
