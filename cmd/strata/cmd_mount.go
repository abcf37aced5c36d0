package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/verity"
	"github.com/strata-build/strata/runtime"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
	"github.com/strata-build/strata/storage/mount"
)

// mountFlags are the flags of strata mount.
type mountFlags struct {
	store, layout string
	layerType     string
	fuse          bool
}

func (f *mountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder` (mount records, unpacked tar layers)")
	fs.StringVar(&f.layout, "layout", strata.DefaultLayout(), "OCI layout `folder` the image is tagged in")
	fs.StringVar(&f.layerType, "layer-type", "", "mount the image's `type` encoding: squashfs or erofs (default: the first of NAME, NAME-squashfs, NAME-erofs whose layers are)")
	fs.BoolVar(&f.fuse, "fuse", false, "mount with squashfuse and fuse-overlayfs even as root (the mode without root)")
}

// umountFlags are the flags of strata umount.
type umountFlags struct{ store string }

func (f *umountFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", strata.DefaultStore(), "store `folder` the mount was made with")
}

// cmdMount mounts a squashfs or erofs image of the layout read-only on a
// folder: each layer mounted as it is (checked against its dm-verity root
// hash), stacked with overlay.
func cmdMount(ctx context.Context, args []string) error {
	fs := newFlagSet("mount")
	var f mountFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cmdline.UsageError{Err: errors.New("want NAME DIR")}
	}
	name, dir := pos[0], pos[1]
	var want layertype.Type
	if f.layerType != "" {
		if want, err = layertype.Parse(f.layerType); err != nil || !want.FS() {
			return cmdline.UsageError{Err: fmt.Errorf("--layer-type %q: only squashfs and erofs images are mounted; a tar image is unpacked (strata grab NAME:/ DIR)", f.layerType)}
		}
	}
	if _, err := os.Stat(f.layout); err != nil {
		return fmt.Errorf("no OCI layout at %s: build %s first, or pass --layout", f.layout, name)
	}
	l, err := storage.OpenLayout(f.layout)
	if err != nil {
		return err
	}
	tag, err := mountableTag(ctx, l, name, want)
	l.Close()
	if err != nil {
		return err
	}
	st, err := runtime.OpenStore(ctx, f.store, storage.OpenOptions{Log: os.Stderr})
	if err != nil {
		return err
	}
	defer st.Close()
	img, err := st.ImportLayout(ctx, f.layout, tag)
	if err != nil {
		return err
	}
	layers, err := mountLayers(ctx, st, img.Manifest.Layers)
	if err != nil {
		return fmt.Errorf("image %q: %w", tag, err)
	}
	opts := mount.Options{Rootless: f.fuse || os.Geteuid() != 0, StateDir: st.Root, Log: os.Stderr}
	if err := mount.Mount(ctx, layers, dir, opts); err != nil {
		return fmt.Errorf("mount %s on %s: %w", tag, dir, err)
	}
	fmt.Fprintf(os.Stderr, "%s mounted read-only on %s (strata umount %s)\n", tag, dir, dir)
	return nil
}

// mountableTag picks the tag of name whose top layer is a file system
// image: of type want when set, else the first of NAME, NAME-squashfs and
// NAME-erofs that is.
func mountableTag(ctx context.Context, l *storage.Layout, name string, want layertype.Type) (string, error) {
	tags := []string{name, runtime.TagName(name, layertype.Squashfs, false), runtime.TagName(name, layertype.Erofs, false)}
	if want != "" {
		tags = []string{name, runtime.TagName(name, want, false)}
	}
	found := false
	for _, tag := range tags {
		desc, err := l.Resolve(ctx, tag)
		if err != nil {
			continue
		}
		found = true
		var m v1.Manifest
		if err := l.ReadJSON(ctx, desc.Digest, &m); err != nil {
			return "", fmt.Errorf("%s: manifest: %w", tag, err)
		}
		if len(m.Layers) == 0 {
			continue
		}
		t, err := layer.TypeOfMediaType(m.Layers[len(m.Layers)-1].MediaType)
		if err == nil && t.FS() && (want == "" || t == want) {
			return tag, nil
		}
	}
	if !found {
		return "", fmt.Errorf("no image %q in the layout (tags tried: %v)", name, tags)
	}
	what, hint := "squashfs or erofs", "squashfs"
	if want != "" {
		what, hint = string(want), string(want)
	}
	return "", fmt.Errorf("image %q has no %s encoding in the layout (tags tried: %v): build it with --layer-type %s", name, what, tags, hint)
}

// mountLayers turns an image's layers into what mount stacks: file system
// layers as their blobs in the store, tar layers (a base strata keeps as
// published) as their folders unpacked in the store.
func mountLayers(ctx context.Context, st *storage.Store, descs []v1.Descriptor) ([]mount.Layer, error) {
	rootless := os.Geteuid() != 0
	out := make([]mount.Layer, 0, len(descs))
	for i, d := range descs {
		t, err := layer.TypeOfMediaType(d.MediaType)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, d.Digest, err)
		}
		if t.FS() {
			root, _ := verity.RootHash(d.Annotations)
			out = append(out, mount.Layer{Path: st.BlobPath(d.Digest.String()), MediaType: d.MediaType, RootHash: root})
			continue
		}
		dir, err := st.Unpacked(ctx, d, layer.UnpackOptions{UserXattr: rootless, Rootless: rootless})
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, d.Digest, err)
		}
		out = append(out, mount.Layer{Dir: dir})
	}
	return out, nil
}

// cmdUmount undoes strata mount.
func cmdUmount(ctx context.Context, args []string) error {
	fs := newFlagSet("umount")
	var f umountFlags
	f.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cmdline.UsageError{Err: errors.New("want DIR")}
	}
	dir, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	root, err := filepath.Abs(f.store)
	if err != nil {
		return err
	}
	return mount.Unmount(ctx, dir, mount.Options{StateDir: root, Log: os.Stderr})
}
