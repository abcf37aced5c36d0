package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/bytesize"
	"github.com/strata-build/strata/runtime/sandbox"
	"github.com/strata-build/strata/storage/layer"
)

// Check is the outcome of one preflight check.
type Check struct {
	Name string
	OK   bool
	// Detail says what was found; Fix how to repair a failure.
	Detail, Fix string
	// Required is false for checks only some builds need (mksquashfs).
	Required bool
}

// CheckOptions say what the build about to run needs.
type CheckOptions struct {
	Store string
	// Squashfs is set when a squashfs layer will be written.
	Squashfs bool
	// Erofs is set when an erofs layer will be written.
	Erofs bool
	// Rootless overrides the detection from the effective uid.
	Rootless *bool
}

func rootless(o CheckOptions) bool {
	if o.Rootless != nil {
		return *o.Rootless
	}
	return os.Geteuid() != 0
}

// RunChecks runs every check and returns their outcomes in a fixed order.
func RunChecks(ctx context.Context, o CheckOptions) []Check {
	rl := rootless(o)
	var out []Check
	add := func(c Check) { out = append(out, c) }

	add(checkKernel())
	add(checkChroot())
	add(checkFilesystem("overlay", "overlay", "load it: modprobe overlay"))
	if rl {
		add(checkUserns())
		uids, gids, err := IDMaps()
		c := Check{Name: "subordinate ids", Required: true, OK: err == nil}
		if err == nil {
			c.Detail = fmt.Sprintf("uids %d-%d, gids %d-%d", uids[1].HostID, uids[1].HostID+uids[1].Size-1, gids[1].HostID, gids[1].HostID+gids[1].Size-1)
		} else {
			who := currentUser()
			c.Detail, c.Fix = err.Error(), "as root: strata unpriv-setup --user "+who
			if errors.Is(err, ErrNoSubIDs) {
				// The error carries the fix for a build's sake;
				// here the fix has its own field.
				c.Detail = fmt.Sprintf("no range of %d subordinate ids for %s in /etc/subuid or /etc/subgid", SubIDCount, who)
			}
		}
		add(c)
		add(checkSetuid("newuidmap"))
		add(checkSetuid("newgidmap"))
		if err == nil {
			add(checkOverlay(ctx, uids, gids))
		}
	} else {
		// Shown as root too, for whoever will build without root on
		// this machine, but not needed by this build.
		add(Check{Name: "subordinate ids", OK: true, Detail: "not needed: builds run as root"})
		for _, tool := range []string{"newuidmap", "newgidmap"} {
			c := checkSetuid(tool)
			c.Required = false
			if !c.OK {
				c.Detail += " (needed only for builds without root)"
			}
			add(c)
		}
		add(checkOverlay(ctx, nil, nil))
	}
	sq := Check{Name: "mksquashfs", Required: o.Squashfs}
	if p, err := exec.LookPath("mksquashfs"); err == nil {
		sq.OK, sq.Detail = true, p
	} else {
		sq.Detail, sq.Fix = "not found (needed only for squashfs layers)", "apt-get install squashfs-tools"
	}
	add(sq)
	ero := Check{Name: "mkfs.erofs", Required: o.Erofs}
	if p, err := exec.LookPath("mkfs.erofs"); err == nil {
		ero.OK, ero.Detail = true, p
	} else {
		ero.Detail, ero.Fix = "not found (needed only for erofs layers)", "apt-get install erofs-utils"
	}
	add(ero)
	add(checkMount(rl))
	if o.Store != "" {
		add(checkStore(o.Store))
		add(checkDisk(o.Store))
	}
	return out
}

// Preflight runs the checks a build needs and fails with every fix when
// one of them fails, before the build does any work. Checks that passed
// before with nothing they depend on changed are not run again (see
// preflight.go), save those of the store folder and the free space.
func Preflight(ctx context.Context, o CheckOptions) error {
	key := preflightKey(o)
	passed := passedBefore(key)
	var checks []Check
	switch {
	case !passed:
		checks = runChecks(ctx, o)
	case o.Store != "":
		checks = []Check{checkStore(o.Store), checkDisk(o.Store)}
	}
	var failed []string
	for _, c := range checks {
		if c.Required && !c.OK {
			failed = append(failed, fmt.Sprintf("  %s: %s\n    fix: %s", c.Name, c.Detail, c.Fix))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("this machine cannot build yet (strata check shows all checks):\n%s", strings.Join(failed, "\n"))
	}
	if !passed {
		rememberPassed(key)
	}
	return nil
}

// runChecks is RunChecks, which a test counts.
var runChecks = RunChecks

// currentUser is the name unpriv-setup takes: looked up from the uid, as
// $USER may be unset (env -i, runuser) or name someone else (su).
func currentUser() string {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Getuid())
}

func checkKernel() Check {
	var u unix.Utsname
	c := Check{Name: "kernel", Required: true}
	if err := unix.Uname(&u); err != nil {
		c.Detail = err.Error()
		return c
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	fmt.Sscanf(rel, "%d.%d", &major, &minor)
	// 5.11 brought overlay mounts inside user namespaces, with whiteouts.
	c.OK = major > 5 || major == 5 && minor >= 11
	c.Detail = rel
	if c.OK {
		c.Detail += " (overlay in user namespaces, unprivileged whiteouts)"
	} else {
		c.Fix = "use Linux 5.11 or later"
	}
	return c
}

func checkFilesystem(name, fs, fix string) Check {
	c := Check{Name: name + " file system", Required: true}
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		c.Detail, c.Fix = err.Error(), "mount /proc"
		return c
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(l, "nodev")) == fs {
			c.OK, c.Detail = true, "available"
			return c
		}
	}
	c.Detail, c.Fix = "not in /proc/filesystems", fix
	return c
}

func checkUserns() Check {
	c := Check{Name: "user namespaces", Required: true, OK: true, Detail: "enabled"}
	if b, err := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); err == nil && strings.TrimSpace(string(b)) == "0" {
		c.OK, c.Detail, c.Fix = false, "kernel.unprivileged_userns_clone=0", "as root: sysctl -w kernel.unprivileged_userns_clone=1"
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		c.OK, c.Detail, c.Fix = false, "user.max_user_namespaces=0", "as root: sysctl -w user.max_user_namespaces=15000"
	}
	return c
}

func checkSetuid(tool string) Check {
	c := Check{Name: tool, Required: true}
	p, err := exec.LookPath(tool)
	if err != nil {
		c.Detail, c.Fix = "not found", "apt-get install uidmap"
		return c
	}
	fi, err := os.Stat(p)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	caps, _ := unix.Getxattr(p, "security.capability", nil)
	if fi.Mode()&os.ModeSetuid == 0 && caps <= 0 {
		c.Detail, c.Fix = p+" is neither setuid nor has file capabilities", "as root: chmod u+s "+p
		return c
	}
	c.OK, c.Detail = true, p+" (setuid)"
	if fi.Mode()&os.ModeSetuid == 0 {
		c.Detail = p + " (file capabilities)"
	}
	return c
}

// checkChroot fails inside a chroot, where every step would fail to
// start (user namespaces are refused) and the overlay check would fail
// with a mount error that points at the kernel.
func checkChroot() Check {
	c := Check{Name: "chroot", Required: true}
	if err := sandbox.DetectChroot(); err != nil {
		c.Detail, c.Fix = err.Error(), sandbox.ChrootFix
		return c
	}
	c.OK, c.Detail = true, "not inside one"
	return c
}

func checkOverlay(ctx context.Context, uids, gids []sandbox.IDMap) Check {
	c := Check{Name: "overlay mount with whiteouts", Required: true}
	if err := sandbox.CheckOverlay(ctx, uids, gids); err != nil {
		if ce := (*sandbox.ChrootError)(nil); errors.As(err, &ce) {
			// The chroot check says why and what to do instead;
			// the kernel's overlay is not to blame.
			c.Detail, c.Fix = "not tried inside a chroot", sandbox.ChrootFix
			return c
		}
		c.Detail = err.Error()
		c.Fix = "use a kernel with overlayfs that allows mounts (and whiteouts) in user namespaces"
		return c
	}
	c.OK, c.Detail = true, "two lower dirs mounted, a whiteout created"
	return c
}

// Magic numbers of file systems a store cannot live on.
const (
	overlayfsMagic = 0x794c7630
	nfsMagic       = 0x6969
)

func checkStore(store string) Check {
	c := Check{Name: "store folder", Required: true}
	abs, err := filepath.Abs(store)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	probe := nearestExisting(abs)
	real, err := filepath.EvalSymlinks(probe)
	if err == nil && real != probe {
		c.Detail, c.Fix = fmt.Sprintf("%s is behind a symlink (%s)", probe, real), "use --store "+filepath.Join(real, strings.TrimPrefix(abs, probe))
		return c
	}
	var st unix.Statfs_t
	if err := unix.Statfs(probe, &st); err != nil {
		c.Detail = err.Error()
		return c
	}
	switch st.Type {
	case overlayfsMagic:
		c.Detail, c.Fix = abs+" is on overlayfs, which cannot hold overlay upper dirs", "use --store on a real file system (ext4, xfs, btrfs, tmpfs)"
		return c
	case nfsMagic:
		c.Detail, c.Fix = abs+" is on NFS", "use --store on a local file system"
		return c
	}
	if err := unix.Access(probe, unix.W_OK); err != nil {
		c.Detail = fmt.Sprintf("%s is not writable by %s", probe, currentUser())
		c.Fix = "use --store in a folder you own, or as root: strata unpriv-setup --user " + currentUser() + " --store " + abs
		return c
	}
	c.OK, c.Detail = true, abs
	return c
}

// nearestExisting is abs, or its nearest parent that exists: the store
// may not exist yet.
func nearestExisting(abs string) string {
	for {
		parent := filepath.Dir(abs)
		if _, err := os.Lstat(abs); err == nil || parent == abs {
			return abs
		}
		abs = parent
	}
}

func checkDisk(store string) Check {
	c := Check{Name: "free disk", Required: true}
	abs, _ := filepath.Abs(store)
	probe := nearestExisting(abs)
	var st unix.Statfs_t
	if err := unix.Statfs(probe, &st); err != nil {
		c.Detail = err.Error()
		return c
	}
	free := st.Bavail * uint64(st.Bsize)
	c.Detail = fmt.Sprintf("%s free under %s", bytesize.Format(int64(free)), probe)
	if free < layer.FreeSpaceFloor { // the floor an unpack keeps free too
		c.Fix = "free some space or use --store elsewhere"
		return c
	}
	c.OK = true
	return c
}

// checkMount says how strata mount would mount an image here, and what it
// lacks: as root, loop devices and (for dm-verity) device-mapper and
// veritysetup; without root, the FUSE tools and a /dev/fuse this user may
// open. Builds do not need it.
func checkMount(rootless bool) Check {
	c := Check{Name: "strata mount"}
	var missing []string
	if !rootless {
		if _, err := os.Stat("/dev/loop-control"); err != nil {
			missing = append(missing, "loop devices (/dev/loop-control)")
		}
		dm := "no device-mapper in this kernel: layers are verified in user space before mounting"
		if f, err := os.Open("/dev/mapper/control"); err == nil {
			f.Close()
			dm = "dm-verity through veritysetup"
			if _, err := exec.LookPath("veritysetup"); err != nil {
				dm = "device-mapper, but no veritysetup (apt-get install cryptsetup-bin): layers are verified in user space"
			}
		}
		c.Detail = "kernel mounts; " + dm
	} else {
		var pkgs, fixes []string
		for _, t := range [][2]string{{"squashfuse", "squashfuse"}, {"fuse-overlayfs", "fuse-overlayfs"}, {"fusermount3", "fuse3"}, {"fsck.erofs", "erofs-utils"}} {
			if _, err := exec.LookPath(t[0]); err != nil {
				missing, pkgs = append(missing, t[0]), append(pkgs, t[1])
			}
		}
		if len(pkgs) > 0 {
			fixes = append(fixes, "apt-get install "+strings.Join(pkgs, " "))
		}
		if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
			missing = append(missing, "a /dev/fuse this user may open ("+err.Error()+")")
			fixes = append(fixes, "as root: chmod 0666 /dev/fuse (udev's mode for it)")
		} else {
			f.Close()
		}
		c.Detail, c.Fix = "FUSE mounts (squashfuse, fuse-overlayfs), layers verified in user space", strings.Join(fixes, "; ")
	}
	if len(missing) > 0 {
		c.Detail = "lacks " + strings.Join(missing, ", ")
		if !rootless {
			c.Fix = "load the loop module (modprobe loop)"
		}
		return c
	}
	c.OK = true
	return c
}
