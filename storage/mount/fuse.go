package mount

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
	"github.com/strata-build/strata/storage/layer"
)

// fuseStartTimeout bounds how long a FUSE daemon may take to mount.
const fuseStartTimeout = 30 * time.Second

// mountFUSE mounts every layer without privileges and merges them with
// fuse-overlayfs.
func (s *state) mountFUSE(ctx context.Context, layers []Layer, stateDir string) error {
	tools := map[string]string{
		"fuse-overlayfs": "apt-get install fuse-overlayfs",
		"fusermount3":    "apt-get install fuse3",
	}
	verified := false
	for i, l := range layers {
		if l.Dir != "" {
			continue
		}
		fs, err := fsTypeOf(l.MediaType)
		if err != nil {
			return fmt.Errorf("%s: %w", layerName(i, l), err)
		}
		switch fs {
		case squashfs:
			tools["squashfuse"] = "apt-get install squashfuse"
		case erofs:
			tools["fsck.erofs"] = "apt-get install erofs-utils"
		}
		verified = verified || l.RootHash != ""
	}
	for tool, hint := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("rootless mount needs %s: %s", tool, hint)
		}
	}
	// fuse-overlayfs splits lowerdir at ':' and its options at ','.
	for _, p := range []string{stateDir, s.rec.Dir} {
		if strings.ContainsAny(p, ":,") {
			return fmt.Errorf("rootless mount: fuse-overlayfs cannot take %q (it has ':' or ',')", p)
		}
	}
	if verified {
		s.logf("FUSE mount: layers verified in user space before mounting; later corruption is not detected")
	}
	if err := os.MkdirAll(filepath.Join(s.rec.Work, "logs"), 0o700); err != nil {
		return err
	}
	extracted := false
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.Dir != "" {
			if err := s.addFolder(i, l); err != nil {
				return err
			}
			continue
		}
		name := layerName(i, l)
		f, b, err := openVerified(i, l, true)
		if err != nil {
			return err
		}
		switch b.fs {
		case squashfs:
			f.Close()
			target := s.layerDir(i)
			if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s: %w", name, err)
			}
			s.rec.Layers = append(s.rec.Layers, layerRecord{Index: i, Path: l.Path, Lower: target})
			lr := &s.rec.Layers[len(s.rec.Layers)-1]
			// squashfuse reads only bytes_used of the image: the tree
			// after it stays out of the mount.
			err := s.startFUSE(ctx, &lr.Mount, "squashfuse", "fuse.squashfuse", target,
				"-f", "-o", "ro,offset=0", l.Path, target)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case erofs:
			if !extracted {
				s.logf("no FUSE driver for erofs here: erofs layers are extracted once (fsck.erofs) into %s and used as folders", filepath.Join(stateDir, "erofs"))
				extracted = true
			}
			dir, err := extractErofs(ctx, f, l, filepath.Join(stateDir, "erofs"))
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			s.rec.Layers = append(s.rec.Layers, layerRecord{Index: i, Path: l.Path, Lower: dir, Extracted: true})
			if err := s.save(); err != nil {
				return err
			}
		}
	}
	// A lower-only fuse-overlayfs is read-only, and "ro" makes the kernel
	// say so (EROFS) instead of fuse-overlayfs refusing each write.
	opts := "ro,lowerdir=" + strings.Join(s.lowers(), ":")
	if uid := os.Geteuid(); uid != 0 {
		// fuse-overlayfs checks permissions (default_permissions) against
		// the owners squashfuse shows, so a user could not read the
		// image's root-owned 0600 files. Showing every file as the
		// user's, as a rootless unpack would own them, makes the whole
		// image readable; the modes stay the image's.
		opts += fmt.Sprintf(",squash_to_uid=%d,squash_to_gid=%d", uid, os.Getegid())
	}
	err := s.startFUSE(ctx, &s.rec.Overlay, "fuse-overlayfs", "fuse.fuse-overlayfs", s.rec.Dir,
		"-f", "-o", opts, s.rec.Dir)
	if err != nil {
		return fmt.Errorf("merged mount on %s: %w", s.rec.Dir, err)
	}
	return nil
}

// startFUSE runs a FUSE daemon in the foreground of its own session, so
// that its pid is known and it outlives this process, records it in *m
// before it mounts (a crash then still leaves it in the record), and waits
// until its mount shows on target.
func (s *state) startFUSE(ctx context.Context, m **mountRecord, tool, fsType, target string, args ...string) error {
	logPath := filepath.Join(s.rec.Work, "logs", filepath.Base(target)+"."+tool+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Not CommandContext: the daemon serves the mount after Mount returns.
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", tool, err)
	}
	exited := make(chan struct{})
	// Reap it when it exits while this process lives (after Unmount, or
	// on a failed start); otherwise init does.
	go func() { cmd.Wait(); close(exited) }()
	start, _, err := procStart(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("%s: %w", tool, err)
	}
	*m = &mountRecord{Target: target, FSType: fsType, FUSE: &procRecord{PID: cmd.Process.Pid, Start: start, Cmd: tool}}
	if err := s.save(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, fuseStartTimeout)
	defer cancel()
	if err := waitMounted(wctx, target, fsType, exited); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// extractErofs returns the folder an erofs layer is extracted to under
// cacheDir, extracting it first when it is not there: fsck.erofs into a
// temporary folder, the opaque marks added, then renamed into place, so a
// folder in the cache is always complete. The key is the root hash, which
// pins the content, else the blob's digest or, for a blob outside an OCI
// layout, its path, size and mtime.
func extractErofs(ctx context.Context, f *os.File, l Layer, cacheDir string) (string, error) {
	key, err := cacheKey(f, l)
	if err != nil {
		return "", err
	}
	final := filepath.Join(cacheDir, key)
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		return final, nil
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheDir, key+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := layer.ExtractErofs(ctx, l.Path, root, markOpaque); err != nil {
		return "", err
	}
	if err := os.Rename(root, final); err != nil {
		// Another mount extracted it meanwhile.
		if st, serr := os.Stat(final); serr == nil && st.IsDir() {
			return final, nil
		}
		return "", err
	}
	return final, nil
}

// markOpaque marks an extracted folder opaque for fuse-overlayfs: with
// user.overlay.opaque, or where the file system takes no user xattrs
// with the OCI marker file, which fuse-overlayfs also honours.
func markOpaque(dir string) error {
	err := unix.Lsetxattr(dir, overlayfs.UserNamespace+overlayfs.Opaque, []byte("y"), 0)
	if err == nil || (err != unix.ENOTSUP && err != unix.EPERM) {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".wh..wh..opq"), nil, 0o644)
}

func cacheKey(f *os.File, l Layer) (string, error) {
	if l.RootHash != "" {
		return "verity-" + strings.ToLower(l.RootHash), nil
	}
	base := filepath.Base(l.Path)
	if hexDigest.MatchString(base) && filepath.Base(filepath.Dir(l.Path)) == "sha256" {
		return "sha256-" + base, nil
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	abs, _ := filepath.Abs(l.Path)
	sum := sha256.Sum256([]byte(abs + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)))
	return fmt.Sprintf("path-%x", sum[:16]), nil
}
