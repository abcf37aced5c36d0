package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/imagepath"
	"github.com/strata-build/strata/internal/mountinfo"
)

// maxLowers is what overlayfs accepts (OVL_MAX_STACK is 500), minus room
// for the skeleton.
const maxLowers = 490

// mountOverlay mounts an overlay of lowers (top first) at target. It uses
// the new mount API, adding lowers one at a time with "lowerdir+" so that a
// deep chain is not limited by the one-page size of mount(2)'s option
// string; on kernels before 6.8 it falls back to mount(2) with paths made
// relative to the lowers' common parent.
func mountOverlay(lowers []string, upper, work, target string, rootless bool) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("overlayfs is not available: %w", err)
	}
	defer unix.Close(fsfd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
			return fmt.Errorf("overlay option %s=%s: %w%s", key, value, err, fsLog(fsfd))
		}
		return nil
	}
	if err := unix.FsconfigSetString(fsfd, "lowerdir+", lowers[0]); errors.Is(err, unix.EINVAL) {
		fsLog(fsfd)
		return mountOverlayLegacy(lowers, upper, work, target, rootless)
	} else if err != nil {
		return fmt.Errorf("overlay lower %s: %w%s", lowers[0], err, fsLog(fsfd))
	}
	for _, l := range lowers[1:] {
		if err := set("lowerdir+", l); err != nil {
			return err
		}
	}
	if err := set("upperdir", upper); err != nil {
		return err
	}
	if err := set("workdir", work); err != nil {
		return err
	}
	for _, kv := range overlayOptions(rootless) {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			if err := unix.FsconfigSetFlag(fsfd, k); err != nil {
				return fmt.Errorf("overlay option %s: %w%s", k, err, fsLog(fsfd))
			}
		} else if err := set(k, v); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("mount overlay: %w%s", err, fsLog(fsfd))
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mount overlay: %w%s", err, fsLog(fsfd))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach overlay at %s: %w", target, err)
	}
	return nil
}

// overlayOptions keep the upper dir self-contained, so that it can become a
// layer that is later stacked on other lowers: no index (it records lower
// file handles), no metacopy (copied-up files must hold their data), no
// redirects (a renamed lower dir must be copied, not referenced, and
// redirect xattrs found in lowers are not trusted; "off" would still follow
// them, which userxattr refuses). Rootless overlay keeps its whiteouts and
// opaque markers in user.* xattrs.
func overlayOptions(rootless bool) []string {
	o := []string{"index=off", "metacopy=off", "redirect_dir=nofollow"}
	if rootless {
		o = append(o, "userxattr")
	}
	return o
}

// fsLog drains the kernel's messages about a file system context, which say
// far more than the errno (e.g. "overlayfs: failed to resolve 'x'").
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// mountOverlayLegacy uses mount(2), whose option string must fit a page.
// When absolute paths are too long it runs from the lowers' common parent
// with relative paths, which is what a deep chain of store layers needs.
func mountOverlayLegacy(lowers []string, upper, work, target string, rootless bool) error {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	build := func(rel func(string) string) string {
		ls := make([]string, len(lowers))
		for i, l := range lowers {
			ls[i] = esc.Replace(rel(l))
		}
		return "lowerdir=" + strings.Join(ls, ":") + ",upperdir=" + esc.Replace(rel(upper)) +
			",workdir=" + esc.Replace(rel(work)) + "," + strings.Join(overlayOptions(rootless), ",")
	}
	data := build(func(p string) string { return p })
	if len(data) >= os.Getpagesize() {
		base := commonDir(append([]string{upper, work}, lowers...))
		data = build(func(p string) string {
			r, err := filepath.Rel(base, p)
			if err != nil {
				return p
			}
			return r
		})
		if len(data) >= os.Getpagesize() {
			return fmt.Errorf("mount overlay: %d lowers do not fit a page of options on this kernel (needs Linux 6.8)", len(lowers))
		}
		// The sandbox's main thread has its own fs_struct only after
		// unshare; the cwd change here is process-wide but harmless in
		// the child, which sets its cwd again before any step.
		if err := unix.Chdir(base); err != nil {
			return err
		}
		defer unix.Chdir("/")
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount overlay (legacy) at %s: %w", target, err)
	}
	return nil
}

// commonDir is the deepest folder containing every path.
func commonDir(paths []string) string {
	c := filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for c != "/" && !strings.HasPrefix(p, c+"/") {
			c = filepath.Dir(c)
		}
	}
	return c
}

// rootfs mounts the container's special file systems and binds below the
// overlay while the host file system is still visible (mount namespace M0).
// Mount targets are resolved inside the rootfs with RESOLVE_IN_ROOT, so an
// image's symlinks cannot redirect a mount or a mount-point creation to the
// host.
type rootfs struct {
	dir     string // host path of the mounted rootfs
	fd      int    // O_PATH of the overlay root
	dev     uint64 // the overlay's device number
	ttyGID  bool
	created []createdPath // mount points created in the merged view, in order
}

// createdPath records a mount point the image lacked despite the skeleton,
// to be removed after the steps.
type createdPath struct {
	path          string // in the container
	parentModTime time.Time
	parentAccess  time.Time
}

// detached is a mount not yet attached anywhere: a clone of a host path
// (open_tree) or a new file system (fsmount).
type detached struct {
	fd   int
	what string // for messages
}

// cloneHost makes a detached copy of the mount tree at a host path, with
// the MOUNT_ATTR_* flags attrs added.
func cloneHost(p string, attrs uint64) (detached, error) {
	return cloneTree(unix.AT_FDCWD, p, attrs)
}

// cloneTree makes a detached copy of the mount tree at dirfd/p (dirfd
// itself when p is empty), with the MOUNT_ATTR_* flags attrs added. It
// must be recursive: in a user namespace the mounts below are locked to
// their parent and a non-recursive bind would be refused.
func cloneTree(dirfd int, p string, attrs uint64) (detached, error) {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_RECURSIVE
	if p == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	fd, err := unix.OpenTree(dirfd, p, uint(flags))
	if err != nil {
		return detached{}, fmt.Errorf("bind %s: %w", p, err)
	}
	if attrs != 0 {
		attr := unix.MountAttr{Attr_set: attrs}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			unix.Close(fd)
			return detached{}, fmt.Errorf("bind of %s: set flags: %w", p, err)
		}
	}
	return detached{fd, p}, nil
}

// Flags of the host folders bound into the container: nothing there is
// setuid or a device for a step, and nothing but the host's own device
// nodes is a device.
const (
	bindRO     = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	bindRW     = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	bindNoExec = bindRO | unix.MOUNT_ATTR_NOEXEC
)

// newFS creates a detached mount of a new file system instance.
func newFS(fstype string, attrs int, opts ...string) (detached, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return detached{}, fmt.Errorf("%s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	for _, kv := range opts {
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			err = unix.FsconfigSetFlag(fsfd, k)
		} else {
			err = unix.FsconfigSetString(fsfd, k, v)
		}
		if err != nil {
			return detached{}, fmt.Errorf("%s option %s: %w%s", fstype, kv, err, fsLog(fsfd))
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return detached{}, fmt.Errorf("%s: %w%s", fstype, err, fsLog(fsfd))
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return detached{}, fmt.Errorf("%s: %w%s", fstype, err, fsLog(fsfd))
	}
	return detached{fd, fstype}, nil
}

// resolve opens a path of the container (O_PATH) without letting symlinks
// escape the rootfs.
func (r *rootfs) resolve(p string) (int, error) {
	return (&inRoot{r.fd}).open(p, unix.O_PATH, 0)
}

// mountPoint resolves p, creating it (a folder, or an empty file when
// !dir) and its missing parents when the image lacks it.
func (r *rootfs) mountPoint(p string, dir bool) (int, error) {
	p = containerPath(p)
	fd, err := r.resolve(p)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	parent, base := path.Split(p)
	if parent != "/" {
		pfd, err := r.mountPoint(path.Clean(parent), true)
		if err != nil {
			return -1, err
		}
		unix.Close(pfd)
	}
	// Re-resolve the parent so that a symlinked parent is followed inside
	// the rootfs, then create the entry relative to it.
	pfd, err := r.resolve(path.Clean(parent))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	dfd, err := unix.Openat(pfd, ".", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("mount point %s: %w", p, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return -1, err
	}
	if dir {
		err = unix.Mkdirat(dfd, base, 0o755)
	} else {
		var f int
		f, err = unix.Openat(dfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil {
		return -1, fmt.Errorf("create mount point %s: %w", p, err)
	}
	// Only what lands in the overlay needs removing; the rest is in our
	// own tmpfs (/dev).
	if st.Dev == r.dev {
		r.created = append(r.created, createdPath{p, time.Unix(st.Mtim.Unix()), time.Unix(st.Atim.Unix())})
	}
	return r.resolve(p)
}

// attach mounts d at container path p.
func (r *rootfs) attach(d detached, p string, dir bool) error {
	defer unix.Close(d.fd)
	tfd, err := r.mountPoint(p, dir)
	if err != nil {
		return fmt.Errorf("mount %s at %s: %w", d.what, p, err)
	}
	defer unix.Close(tfd)
	if err := unix.MoveMount(d.fd, "", tfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s at %s: %w", d.what, p, err)
	}
	return nil
}

// procReadOnly are the parts of /proc that write to the host kernel's
// settings rather than the container's: a package's maintainer script that
// runs sysctl must fail, not retune the build machine.
var procReadOnly = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"}

// bindReadOnly binds container path p read-only onto itself when it exists.
func (r *rootfs) bindReadOnly(p string) error {
	fd, err := r.resolve(p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(fd)
	d, err := cloneTree(fd, "", bindNoExec)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(d.fd)
	if err := unix.MoveMount(d.fd, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind %s read-only: %w", p, err)
	}
	return nil
}

// hostSources are the host mounts the container gets, cloned before
// anything else so that they are taken from the host's view.
type hostSources struct {
	sys     detached
	devices map[string]detached
	resolv  *detached
	steps   detached
	binds   []detached
	imports []detached
	secrets *detached
}

// devices bound from the host: device nodes cannot be created in a user
// namespace, but bind mounts of the host's nodes work there too.
var hostDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

func cloneHostSources(cs *childSpec) (*hostSources, error) {
	var hs hostSources
	var err error
	if hs.sys, err = cloneHost("/sys", bindNoExec); err != nil {
		return nil, err
	}
	hs.devices = map[string]detached{}
	for _, d := range hostDevices {
		if hs.devices[d], err = cloneHost("/dev/"+d, 0); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		d, err := cloneHost("/etc/resolv.conf", bindNoExec)
		if err != nil {
			return nil, err
		}
		hs.resolv = &d
	}
	if hs.steps, err = cloneHost(cs.StepsDir, bindRO); err != nil {
		return nil, err
	}
	for _, b := range cs.Binds {
		flags := uint64(bindRW)
		if b.ReadOnly {
			flags = bindRO
		}
		d, err := cloneHost(b.Source, flags)
		if err != nil {
			return nil, err
		}
		hs.binds = append(hs.binds, d)
	}
	for _, im := range cs.Imports {
		d, err := maskedImport(im)
		if err != nil {
			d, err = cloneHost(im.Source, bindRO)
		}
		if err != nil {
			return nil, err
		}
		hs.imports = append(hs.imports, d)
	}
	if cs.Secrets > 0 {
		secrets, err := readSecrets()
		if err != nil {
			return nil, err
		}
		d, err := secretsFS(secrets)
		if err != nil {
			return nil, err
		}
		hs.secrets = &d
	}
	return &hs, nil
}

// setup mounts the container's file systems below the overlay root.
func (r *rootfs) setup(cs *childSpec, hs *hostSources) error {
	const (
		nosuid = unix.MOUNT_ATTR_NOSUID
		nodev  = unix.MOUNT_ATTR_NODEV
		noexec = unix.MOUNT_ATTR_NOEXEC
	)
	// hidepid=ptraceable: a process the step may not ptrace is not in its
	// /proc at all. That is pid 1, this process, whose other threads
	// still show the host's mount table in their mountinfo. (invisible
	// would let group 0 see everything.)
	proc, err := newFS("proc", nosuid|nodev|noexec, "hidepid=ptraceable")
	if err != nil {
		return err
	}
	if err := r.attach(proc, "/proc", true); err != nil {
		return err
	}
	for _, p := range procReadOnly {
		if err := r.bindReadOnly(p); err != nil {
			return err
		}
	}
	if err := r.attach(hs.sys, "/sys", true); err != nil {
		return err
	}
	// nodev: a node a step makes here does not open; the host's nodes
	// are bind mounts with their own flags.
	dev, err := newFS("tmpfs", nosuid|nodev|noexec, "mode=755", "size=64k")
	if err != nil {
		return err
	}
	if err := r.attach(dev, "/dev", true); err != nil {
		return err
	}
	for _, d := range hostDevices {
		if err := r.attach(hs.devices[d], "/dev/"+d, false); err != nil {
			return err
		}
	}
	ptsOpts := []string{"newinstance", "ptmxmode=0666", "mode=0620"}
	if cs.TTYGroup {
		ptsOpts = append(ptsOpts, "gid=5")
	}
	pts, err := newFS("devpts", nosuid|noexec, ptsOpts...)
	if err != nil {
		return err
	}
	if err := r.attach(pts, "/dev/pts", true); err != nil {
		return err
	}
	shm, err := newFS("tmpfs", nosuid|nodev|noexec, "mode=1777", "size=65536k")
	if err != nil {
		return err
	}
	if err := r.attach(shm, "/dev/shm", true); err != nil {
		return err
	}
	devfd, err := r.resolve("/dev")
	if err != nil {
		return err
	}
	defer unix.Close(devfd)
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := unix.Symlinkat(target, devfd, name); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
	}
	if hs.resolv != nil {
		if err := r.attach(*hs.resolv, "/etc/resolv.conf", false); err != nil {
			// The image's /etc/resolv.conf is a dangling symlink (to
			// /run/systemd/..., say) or not a file: leave it as the
			// image has it rather than fail the build.
			fmt.Fprintf(os.Stderr, "strata: warning: host DNS settings not mounted: %v\n", err)
		}
	}
	if err := r.attach(hs.steps, "/.strata", true); err != nil {
		return err
	}
	for i, im := range cs.Imports {
		if err := r.attach(hs.imports[i], imagepath.Imports+"/"+im.Name, im.Dir); err != nil {
			return err
		}
	}
	if hs.secrets != nil {
		if err := r.attach(*hs.secrets, imagepath.Secrets, true); err != nil {
			return err
		}
	}
	for i, b := range cs.Binds {
		fi, err := os.Stat(b.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
		if err := r.attach(hs.binds[i], b.Dest, fi.IsDir()); err != nil {
			return err
		}
	}
	return nil
}

// maskedImport is the steps' view of an imported folder without what its
// copy leaves out: a read-only overlay of the mask (whiteouts) over the
// source. Without a mask, or where the overlay cannot be made, the caller
// binds the source as it is: the view is a convenience, the copy is what
// counts. (Unlike that bind, the overlay does not show mounts below the
// source.)
func maskedImport(im importBind) (detached, error) {
	if im.Mask == "" {
		return detached{}, errors.New("no mask")
	}
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	return newFS("overlay", bindRO, "lowerdir="+esc.Replace(im.Mask)+":"+esc.Replace(im.Source))
}

// cleanup runs in the pivoted namespace (M1) after the steps: it unmounts
// everything below / and removes the mount points that had to be created in
// the merged view, restoring their parents' times, so that the upper dir
// holds only what the steps did. Unmounting happens only when there is
// something to remove, because M1 dies with the child anyway.
func (r *rootfs) cleanup(root *inRoot) error {
	if len(r.created) == 0 {
		return nil
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range bytes.Split(info, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) > 4 && f[4] != "/" {
			points = append(points, mountinfo.Unescape(f[4]))
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", points[i], err)
		}
	}
	var errs []error
	for i := len(r.created) - 1; i >= 0; i-- {
		c := r.created[i]
		if err := root.remove(c.path); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove mount point %s: %w", c.path, err))
			}
			continue
		}
		root.chtimesDir(path.Dir(c.path), c.parentAccess, c.parentModTime)
	}
	return errors.Join(errs...)
}
