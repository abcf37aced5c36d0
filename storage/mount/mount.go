// Package mount mounts the layers of a squashfs or erofs image read-only on
// a folder, merged by overlayfs, and unmounts them again. It is what
// `strata mount` and `strata umount` run; the caller resolves an image to
// its layer blobs.
//
// Two modes:
//
//   - kernel (root): every layer blob gets a read-only loop device limited
//     to its file system, so the verity tree after it is not part of the
//     device. With device-mapper, the layer is mounted through a dm-verity
//     device (veritysetup open), which checks every block as it is read.
//     Without it (many container hosts), the blob is checked against its
//     root hash in user space before mounting, and the log says that later
//     corruption goes unnoticed. The layers are then merged by a kernel
//     overlay with only lower dirs, which is read-only.
//   - FUSE (rootless, or Options.Rootless): every blob is checked in user
//     space, squashfs layers are mounted with squashfuse, and erofs layers,
//     for which Debian 12 has no FUSE driver, are extracted once with
//     fsck.erofs into a cache under Options.StateDir. fuse-overlayfs merges
//     them, read-only.
//
// Either way the layers keep overlayfs's form: char 0/0 whiteouts and
// opaque folders (trusted.overlay.opaque and user.overlay.opaque) hide
// what lies below them in the merged tree.
//
// Every mount leaves a record, StateDir/mounts/ID.json (ID derived from
// the mount point), written after each step, so that Unmount — even after
// a crash halfway through Mount — undoes exactly what was done.
package mount

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Layer is one layer of an image: a squashfs or erofs blob, or a folder.
type Layer struct {
	// Dir, when set, is a folder in overlay form used as the layer as it
	// is: a tar layer of the image (a base kept as published), unpacked by
	// the caller. Path, MediaType and RootHash are then unused.
	Dir string
	// Path is the blob's file, in an OCI layout or anywhere else.
	Path string
	// MediaType is the blob's media type from the layer descriptor: one of
	// storage/layer's squashfs types or the erofs ones here.
	MediaType string
	// RootHash is the dm-verity root hash (hex) from the descriptor
	// (verity.RootHash); empty for a layer without a tree.
	RootHash string
}

// Options tunes Mount and Unmount.
type Options struct {
	// Rootless forces the FUSE mode even for root. A process that is not
	// root always uses it.
	Rootless bool
	// StateDir holds the mount records and the private mounts of the
	// layers (mounts/), and the extracted erofs layers of the FUSE mode
	// (erofs/). Mount and Unmount of one mount must get the same StateDir.
	StateDir string
	// Log receives what the caller should know but is no error (the
	// verification mode, extractions). nil discards it.
	Log io.Writer
}

// ErrMounted is wrapped by Mount's error when the folder already is a
// strata mount.
var ErrMounted = errors.New("already a strata mount")

// ErrNotMounted is wrapped by Unmount's error when the folder has no mount
// record.
var ErrNotMounted = errors.New("not a strata mount")

// Modes in a record.
const (
	modeKernel = "kernel"
	modeFUSE   = "fuse"
)

// record is what a mount did, in order; Unmount undoes it in reverse.
type record struct {
	// Dir is the mount point, absolute and with symlinks resolved.
	Dir  string `json:"dir"`
	Mode string `json:"mode"`
	// Work is the private folder of the layer mounts.
	Work    string        `json:"work"`
	Created time.Time     `json:"created"`
	Layers  []layerRecord `json:"layers"`
	// Overlay is the merged mount on Dir, once mounted.
	Overlay *mountRecord `json:"overlay,omitempty"`
}

// layerRecord is one layer's part of a mount.
type layerRecord struct {
	Index int    `json:"index"`
	Path  string `json:"path"`
	// Lower is the folder the overlay takes as this layer: its mount
	// point, or in FUSE mode its extracted folder for erofs.
	Lower string `json:"lower"`
	// Loop is the loop device over the blob (kernel mode).
	Loop *loopRecord `json:"loop,omitempty"`
	// Verity is the name of the dm-verity device (kernel mode with
	// device-mapper).
	Verity string `json:"verity,omitempty"`
	// Mount is the layer's own mount on Lower, once mounted.
	Mount *mountRecord `json:"mount,omitempty"`
	// Extracted is set when Lower is an extracted erofs layer (FUSE
	// mode); the folder is a cache kept after Unmount.
	Extracted bool `json:"extracted,omitempty"`
	// Given is set when Lower is the caller's folder (Layer.Dir), which
	// Unmount leaves alone.
	Given bool `json:"given,omitempty"`
}

// mountRecord is one mount: where, of what type (as mountinfo shows it),
// and the FUSE daemon that serves it, if any.
type mountRecord struct {
	Target string      `json:"target"`
	FSType string      `json:"fstype"`
	FUSE   *procRecord `json:"fuse,omitempty"`
}

// procRecord names a process robustly: a pid alone could be reused by
// the time Unmount runs.
type procRecord struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // field 22 of /proc/PID/stat
	Cmd   string `json:"cmd"`
}

// state is the record of one mount and where it is saved.
type state struct {
	rec  record
	path string
	log  io.Writer
}

func (s *state) save() error {
	b, err := json.MarshalIndent(&s.rec, "", "\t")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write mount record: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("write mount record: %w", err)
	}
	return nil
}

func (s *state) logf(format string, args ...any) {
	fmt.Fprintf(s.log, format+"\n", args...)
}

// canonical returns dir absolute with symlinks resolved, as the kernel
// will show the mount point. A dead FUSE mount point cannot be resolved
// (stat says ENOTCONN), so its parent is resolved instead.
func canonical(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		return p, nil
	}
	if p, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(p, filepath.Base(abs)), nil
	}
	return abs, nil
}

// paths returns the record file and the private work folder of the mount
// on dir (canonical).
func paths(stateDir, dir string) (recPath, work string) {
	id := mountID(dir)
	base := filepath.Join(stateDir, "mounts")
	return filepath.Join(base, id+".json"), filepath.Join(base, id)
}

// mountID names the mount on dir (canonical) in the state folder: a hash,
// since the path itself may be long or hold any byte.
func mountID(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:8])
}

func (o Options) logger() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Mount mounts layers (base first) read-only on dir, merged as overlayfs
// would merge them. On failure it undoes what it did and returns an error
// that names the layer and the step that failed.
func Mount(ctx context.Context, layers []Layer, dir string, opts Options) (err error) {
	if len(layers) == 0 {
		return errors.New("mount: no layers")
	}
	if opts.StateDir == "" {
		return errors.New("mount: no state folder for the mount record")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	target, err := canonical(dir)
	if err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	if st, err := os.Stat(target); err != nil {
		return fmt.Errorf("mount on %s: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("mount on %s: not a folder", dir)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "mounts"), 0o700); err != nil {
		return fmt.Errorf("mount: state folder: %w", err)
	}
	recPath, work := paths(stateDir, target)
	// The record is created exclusively first: it is also the lock that
	// keeps two mounts off one folder.
	f, err := os.OpenFile(recPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mount on %s: %w (record %s): unmount it first", target, ErrMounted, recPath)
	} else if err != nil {
		return fmt.Errorf("mount: create record: %w", err)
	}
	f.Close()

	s := &state{path: recPath, log: opts.logger(), rec: record{
		Dir: target, Mode: modeKernel, Work: work, Created: time.Now().UTC(),
	}}
	if opts.Rootless || os.Geteuid() != 0 {
		s.rec.Mode = modeFUSE
	}
	defer func() {
		if err == nil {
			return
		}
		if uerr := s.undo(context.WithoutCancel(ctx)); uerr != nil {
			err = fmt.Errorf("%w; undoing the partial mount also failed: %v (record kept: %s)", err, uerr, recPath)
		}
	}()
	if err := s.save(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(work, "layers"), 0o700); err != nil {
		return fmt.Errorf("mount: work folder: %w", err)
	}
	// The layer mounts are reached through the work folder only; 0700
	// keeps other users out of the unmerged layers, and FUSE mounts are
	// the user's own anyway.
	if err := os.Chmod(work, 0o700); err != nil {
		return fmt.Errorf("mount: work folder: %w", err)
	}

	if s.rec.Mode == modeFUSE {
		err = s.mountFUSE(ctx, layers, stateDir)
	} else {
		err = s.mountKernel(ctx, layers)
	}
	if err != nil {
		return err
	}
	return s.save()
}

// addFolder records a layer the caller passed as a folder (Layer.Dir).
func (s *state) addFolder(i int, l Layer) error {
	if fi, err := os.Stat(l.Dir); err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, l.Dir, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("layer %d (%s): not a folder", i, l.Dir)
	}
	s.rec.Layers = append(s.rec.Layers, layerRecord{Index: i, Path: l.Dir, Lower: l.Dir, Given: true})
	return s.save()
}

// layerDir is the mount point of layer i in the work folder.
func (s *state) layerDir(i int) string {
	return filepath.Join(s.rec.Work, "layers", strconv.Itoa(i))
}

// lowers returns the overlay's lower folders, top layer first.
func (s *state) lowers() []string {
	var l []string
	for i := len(s.rec.Layers) - 1; i >= 0; i-- {
		l = append(l, s.rec.Layers[i].Lower)
	}
	return l
}

// Unmount undoes the strata mount on dir: the merged mount first, then
// every layer's mount, verity device and loop device, in reverse order.
// Pieces already gone (a layer mount someone unmounted, a FUSE daemon that
// died) are skipped. The record is removed once everything is undone; on
// an error it stays, so that Unmount can be run again.
func Unmount(ctx context.Context, dir string, opts Options) error {
	if opts.StateDir == "" {
		return errors.New("unmount: no state folder for the mount record")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	target, err := canonical(dir)
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	recPath, _ := paths(stateDir, target)
	b, err := os.ReadFile(recPath)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unmount %s: %w (no record in %s)", target, ErrNotMounted, filepath.Dir(recPath))
	} else if err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	s := &state{path: recPath, log: opts.logger()}
	if err := json.Unmarshal(b, &s.rec); err != nil {
		return fmt.Errorf("unmount %s: record %s: %w", target, recPath, err)
	}
	if err := s.undo(ctx); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// undo takes down what the record lists, in reverse order, saving the
// record as pieces go, and removes the record and the work folder when
// nothing is left.
func (s *state) undo(ctx context.Context) error {
	var errs []error
	if s.rec.Overlay != nil {
		if err := unmountOne(ctx, *s.rec.Overlay); err != nil {
			// Everything else is held by the overlay: stop here.
			return fmt.Errorf("merged mount on %s: %w", s.rec.Dir, err)
		}
		s.rec.Overlay = nil
		_ = s.save()
	}
	for i := len(s.rec.Layers) - 1; i >= 0; i-- {
		lr := &s.rec.Layers[i]
		name := fmt.Sprintf("layer %d (%s)", lr.Index, lr.Path)
		if lr.Mount != nil {
			if err := unmountOne(ctx, *lr.Mount); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			lr.Mount = nil
		}
		if lr.Verity != "" {
			if err := closeVerity(ctx, lr.Verity); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			lr.Verity = ""
		}
		if lr.Loop != nil {
			if err := detachLoop(*lr.Loop); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			lr.Loop = nil
		}
		if !lr.Extracted && !lr.Given {
			if err := os.Remove(s.layerDir(lr.Index)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
		}
		s.rec.Layers = s.rec.Layers[:i]
	}
	if err := errors.Join(errs...); err != nil {
		_ = s.save()
		return err
	}
	// Only files and empty folders are removed: never RemoveAll under a
	// path that could still hold a mount.
	_ = removeFiles(filepath.Join(s.rec.Work, "logs"))
	for _, p := range []string{
		filepath.Join(s.rec.Work, "layers", "empty"),
		filepath.Join(s.rec.Work, "layers"),
		filepath.Join(s.rec.Work, "logs"),
		s.rec.Work,
	} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = s.save()
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove mount record: %w", err)
	}
	return nil
}

// removeFiles removes the plain files of dir (the FUSE daemons' logs).
func removeFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// Active returns the folders of the mounts whose records are in stateDir:
// mounts made and not (fully) undone. Their layers are blobs and folders
// under stateDir's store, which must not be removed while they are
// mounted.
func Active(stateDir string) ([]string, error) {
	recs, err := filepath.Glob(filepath.Join(stateDir, "mounts", "*.json"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, p := range recs {
		var rec record
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil || rec.Dir == "" {
			dirs = append(dirs, p) // unreadable: name the record itself
			continue
		}
		dirs = append(dirs, rec.Dir)
	}
	return dirs, nil
}
