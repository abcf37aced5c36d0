package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

const noDMNotice = "no dm-verity in this kernel: layers verified in user space before mounting; later corruption is not detected"

// loopRecord is a loop device and the file it must still be bound to
// for Unmount to detach it: the device may have been cleared and reused.
type loopRecord struct {
	Device string `json:"device"`
	Dev    uint64 `json:"dev"` // st_dev of the blob
	Ino    uint64 `json:"ino"` // st_ino of the blob
}

// haveDM reports whether device-mapper works here: the control node opens.
func haveDM() bool {
	f, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// mountKernel mounts every layer through a loop device (and dm-verity when
// the kernel has it) and merges them with a kernel overlay.
func (s *state) mountKernel(ctx context.Context, layers []Layer) error {
	dm := haveDM()
	if dm {
		if _, err := exec.LookPath("veritysetup"); err != nil {
			s.logf("no veritysetup (apt-get install cryptsetup-bin) for dm-verity")
			dm = false
		}
	}
	if !dm && slices.ContainsFunc(layers, func(l Layer) bool { return l.RootHash != "" }) {
		s.logf("%s", noDMNotice)
	}
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
		if err := s.mountKernelLayer(ctx, i, l, dm && l.RootHash != ""); err != nil {
			return err
		}
	}
	return s.mountOverlay()
}

func (s *state) mountKernelLayer(ctx context.Context, i int, l Layer, useDM bool) error {
	name := layerName(i, l)
	f, b, err := openVerified(i, l, !useDM)
	if err != nil {
		return err
	}
	defer f.Close()
	target := s.layerDir(i)
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", name, err)
	}
	s.rec.Layers = append(s.rec.Layers, layerRecord{Index: i, Path: l.Path, Lower: target})
	lr := &s.rec.Layers[len(s.rec.Layers)-1]

	// Without dm-verity the device ends with the file system; with it,
	// the device covers the tree too, which veritysetup reads at
	// --hash-offset (the data size comes from the tree's superblock).
	limit := uint64(0)
	if !useDM && b.size > b.hashOffset {
		limit = uint64(b.hashOffset)
	}
	loop, lf, err := attachLoop(f, limit, s.rec.Work)
	if err != nil {
		return fmt.Errorf("%s: loop device: %w", name, err)
	}
	// The loop device clears itself (LO_FLAGS_AUTOCLEAR) when its last
	// opener goes: this fd keeps it until the mount (or dm) holds it.
	defer lf.Close()
	lr.Loop = &loop
	if err := s.save(); err != nil {
		return err
	}
	dev := loop.Device
	if useDM {
		vname := verityName(l.RootHash, s.rec.Dir, i)
		lr.Verity = vname
		if err := s.save(); err != nil {
			return err
		}
		if err := openVerity(ctx, loop.Device, vname, l.RootHash, b.hashOffset); err != nil {
			lr.Verity = ""
			return fmt.Errorf("%s: %w", name, err)
		}
		dev = "/dev/mapper/" + vname
	}
	if err := unix.Mount(dev, target, string(b.fs), unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("%s: mount %s %s on %s: %w", name, b.fs, dev, target, err)
	}
	lr.Mount = &mountRecord{Target: target, FSType: string(b.fs)}
	return s.save()
}

// verityName names the dm-verity device of layer i of the mount on dir:
// derived from the root hash, so that dmsetup ls tells which layer it is,
// and from the mount, so that two mounts sharing a layer do not collide.
func verityName(root, dir string, i int) string {
	return fmt.Sprintf("strata-%s-%s-%d", strings.ToLower(root[:16]), mountID(dir), i)
}

func openVerity(ctx context.Context, dev, name, root string, hashOffset int64) error {
	cmd := exec.CommandContext(ctx, "veritysetup", "open", dev, name, dev, root,
		"--hash-offset="+strconv.FormatInt(hashOffset, 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("veritysetup open: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// closeVerity removes a dm-verity device unless it is gone already.
func closeVerity(ctx context.Context, name string) error {
	if _, err := os.Stat("/dev/mapper/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := exec.CommandContext(ctx, "veritysetup", "close", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("veritysetup close %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// loopMu serialises this process's loop allocations: LOOP_CTL_GET_FREE
// hands the same free device to concurrent callers.
var loopMu sync.Mutex

// attachLoop binds a read-only, self-clearing loop device to f, ending at
// limit when it is not 0, and returns it with an open fd on it that keeps
// it bound until closed.
func attachLoop(f *os.File, limit uint64, work string) (loopRecord, *os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return loopRecord{}, nil, err
	}
	loopMu.Lock()
	defer loopMu.Unlock()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return loopRecord{}, nil, err
	}
	defer ctl.Close()
	var lastErr error
	// Another process may take the free device between the two ioctls
	// (LOOP_CONFIGURE then says EBUSY): ask again.
	for range 20 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return loopRecord{}, nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		path, lf, err := openLoop(n, work)
		if err != nil {
			return loopRecord{}, nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
		cfg.Info.Sizelimit = limit
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], f.Name())
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil {
			return loopRecord{Device: path, Dev: st.Dev, Ino: st.Ino}, lf, nil
		}
		lf.Close()
		if err != unix.EBUSY {
			return loopRecord{}, nil, fmt.Errorf("LOOP_CONFIGURE %s: %w", path, err)
		}
		lastErr = err
	}
	return loopRecord{}, nil, fmt.Errorf("no free loop device: %w", lastErr)
}

// openLoop opens /dev/loopN. A container's /dev may lack nodes for
// devices made after it started; a node in the work folder then stands in.
func openLoop(n int, work string) (string, *os.File, error) {
	path := "/dev/loop" + strconv.Itoa(n)
	lf, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		path = filepath.Join(work, "loop"+strconv.Itoa(n))
		os.Remove(path)
		if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(7, uint32(n)))); err != nil {
			return "", nil, fmt.Errorf("make %s: %w", path, err)
		}
		lf, err = os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return "", nil, err
	}
	return path, lf, nil
}

// detachLoop clears a loop device if it is still bound to the recorded
// blob. Usually it is gone already: the autoclear flag released it when
// its mount went.
func detachLoop(l loopRecord) error {
	lf, err := os.OpenFile(l.Device, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENXIO) {
		return nil
	} else if err != nil {
		return fmt.Errorf("detach %s: %w", l.Device, err)
	}
	defer lf.Close()
	info, err := unix.IoctlLoopGetStatus64(int(lf.Fd()))
	if err == unix.ENXIO {
		return nil // unbound
	} else if err != nil {
		return fmt.Errorf("detach %s: %w", l.Device, err)
	}
	if info.Device != l.Dev || info.Inode != l.Ino {
		return nil // cleared and reused by someone else
	}
	if err := unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0); err != nil && err != unix.ENXIO {
		return fmt.Errorf("detach %s: %w", l.Device, err)
	}
	if strings.HasPrefix(l.Device, "/dev/") {
		return nil
	}
	return os.Remove(l.Device)
}

// mountOverlay merges the layer mounts on the mount point with a kernel
// overlay of lower dirs only, which overlayfs makes read-only.
func (s *state) mountOverlay() error {
	lowers := s.lowers()
	if len(lowers) == 1 {
		// overlayfs wants two lower dirs when it has no upper one.
		empty := filepath.Join(s.rec.Work, "layers", "empty")
		if err := os.Mkdir(empty, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("merged mount: %w", err)
		}
		lowers = append(lowers, empty)
	}
	if err := overlayNewAPI(lowers, s.rec.Dir); err != nil {
		if !errors.Is(err, errNoLowerdirPlus) {
			return fmt.Errorf("merged mount on %s: %w", s.rec.Dir, err)
		}
		if err := overlayLegacy(lowers, s.rec.Dir); err != nil {
			return fmt.Errorf("merged mount on %s: %w", s.rec.Dir, err)
		}
	}
	s.rec.Overlay = &mountRecord{Target: s.rec.Dir, FSType: "overlay"}
	return s.save()
}

// overlayOptions are the options besides the lower dirs: no index and no
// xino, which need features of every lower file system (file handles,
// spare inode bits) and matter only with an upper dir.
var overlayOptions = [][2]string{{"index", "off"}, {"xino", "off"}}

var errNoLowerdirPlus = errors.New("kernel lacks overlayfs lowerdir+")

// overlayNewAPI mounts the overlay with fsopen(2), adding one lower dir at
// a time ("lowerdir+", Linux 6.5), so that no option string hits the page
// size limit of mount(2)'s data however many layers there are.
func overlayNewAPI(lowers []string, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%w: fsopen: %v", errNoLowerdirPlus, err)
	}
	defer unix.Close(fd)
	if err := unix.FsconfigSetString(fd, "source", "strata"); err != nil {
		return fsError(fd, "source", err)
	}
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			if i == 0 && err == unix.EINVAL {
				return fmt.Errorf("%w: %v", errNoLowerdirPlus, fsError(fd, "lowerdir+", err))
			}
			return fsError(fd, "lowerdir+ "+l, err)
		}
	}
	for _, o := range overlayOptions {
		if err := unix.FsconfigSetString(fd, o[0], o[1]); err != nil {
			return fsError(fd, o[0]+"="+o[1], err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fsError(fd, "create", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return fsError(fd, "fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}

// fsError adds what the kernel logged to the fs context (its "e ..."
// lines, readable from the fd) to a failed fsconfig step.
func fsError(fd int, step string, err error) error {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, string(buf[:n]))
	}
	if len(msgs) == 0 {
		return fmt.Errorf("overlay %s: %w", step, err)
	}
	return fmt.Errorf("overlay %s: %w (%s)", step, err, strings.Join(msgs, "; "))
}

// overlayLegacy mounts the overlay with mount(2) on kernels before 6.5. Its
// option string must fit a page: past that, the lower dirs are named by
// /proc/self/fd/N paths of O_PATH fds, which overlayfs resolves when it
// mounts.
func overlayLegacy(lowers []string, target string) error {
	build := func(names []string) string {
		esc := make([]string, len(names))
		for i, n := range names {
			esc[i] = strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`).Replace(n)
		}
		opts := "lowerdir=" + strings.Join(esc, ":")
		for _, o := range overlayOptions {
			opts += "," + o[0] + "=" + o[1]
		}
		return opts
	}
	opts := build(lowers)
	if len(opts) >= os.Getpagesize() {
		names := make([]string, len(lowers))
		for i, l := range lowers {
			fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open lower dir %s: %w", l, err)
			}
			defer unix.Close(fd)
			names[i] = "/proc/self/fd/" + strconv.Itoa(fd)
		}
		if opts = build(names); len(opts) >= os.Getpagesize() {
			return fmt.Errorf("%d layers do not fit overlayfs's options on this kernel (before 6.5)", len(lowers))
		}
	}
	if err := unix.Mount("strata", target, "overlay", unix.MS_RDONLY|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return nil
}
