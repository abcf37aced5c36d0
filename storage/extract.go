package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/overlayfs"
	"github.com/strata-build/strata/storage/layer"
)

// Extract copies path (absolute, in the image) out of the image made of
// layers (bottom first) to dest on the host: a file becomes the file dest,
// a folder is merged into the folder dest. Each layer is unpacked into the
// store once (see Unpacked) and read in place, as the overlay of the image
// would show it.
func (s *Store) Extract(ctx context.Context, layers []v1.Descriptor, path, dest string, opts ExtractOptions) error {
	rootless := os.Geteuid() != 0
	dirs, err := s.UnpackAll(ctx, layers, layer.UnpackOptions{UserXattr: rootless, Rootless: rootless})
	if err != nil {
		return err
	}
	return ExtractDirs(ctx, dirs, path, dest, opts)
}

// ExtractOptions tune ExtractDirs.
type ExtractOptions struct {
	// Special keeps set-user-id and set-group-id bits and copies device
	// nodes (as root). Without it, what lands on the host is as harmless
	// as a download: set-id bits are dropped, and device nodes, fifos and
	// sockets are left out and named on Log.
	Special bool
	Log     io.Writer
}

// ErrNotInImage is returned (wrapped) by ExtractDirs when the path does not
// exist in the image.
var ErrNotInImage = errors.New("no such file or folder in the image")

// ExtractDirs copies path out of the overlay of the layer folders dirs
// (bottom first, in overlay format: whiteouts are char 0/0 nodes, opaque
// folders carry an overlay.opaque xattr) to dest, without mounting
// anything. Symbolic links met on the way, the last component included,
// are followed inside the image, never on the host. Owners are kept when
// running as root, modes and modification times always.
func ExtractDirs(ctx context.Context, dirs []string, p, dest string, opts ExtractOptions) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path in the image", p)
	}
	m := merged{dirs: dirs, opts: opts}
	e, err := m.resolve(p)
	if err != nil {
		return err
	}
	return m.copy(ctx, e, dest)
}

// merged is the read-only view of an overlay of layer folders.
type merged struct {
	dirs []string
	opts ExtractOptions
}

// node is one path of the merged view: a folder made of the layers in
// stack (top first), or a non-folder found in layer top.
type node struct {
	rel   string // slash path relative to the image root, "" for the root
	dir   bool
	stack []int // layer indexes, top first, for a folder
	top   int   // layer index of a non-folder
	info  fs.FileInfo
}

func (m *merged) abs(i int, rel string) string {
	return filepath.Join(m.dirs[i], filepath.FromSlash(rel))
}

func (m *merged) root() (*node, error) {
	n := &node{dir: true}
	for i := len(m.dirs) - 1; i >= 0; i-- {
		n.stack = append(n.stack, i)
		if overlayfs.IsOpaque(m.dirs[i]) {
			break
		}
	}
	if len(n.stack) == 0 {
		return nil, fmt.Errorf("/: %w (the image has no layers)", ErrNotInImage)
	}
	info, err := os.Lstat(m.dirs[n.stack[0]])
	n.info = info
	return n, err
}

// child looks name up in the folder parent as overlayfs does: the topmost
// layer that has it wins; a whiteout hides it; a folder merges with the
// folders below it until an opaque one or a non-folder.
func (m *merged) child(parent *node, name string) (*node, error) {
	rel := path.Join(parent.rel, name)
	var n *node
	for _, i := range parent.stack {
		info, err := os.Lstat(m.abs(i, rel))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if overlayfs.IsWhiteout(info) {
			break
		}
		if !info.IsDir() {
			if n == nil {
				n = &node{rel: rel, top: i, info: info}
			}
			break
		}
		if n == nil {
			n = &node{rel: rel, dir: true, info: info}
		}
		n.stack = append(n.stack, i)
		if overlayfs.IsOpaque(m.abs(i, rel)) {
			break
		}
	}
	return n, nil
}

// resolve walks p from the image root, following symbolic links inside
// the image.
func (m *merged) resolve(p string) (*node, error) {
	cur, err := m.root()
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	if parts[0] == "" {
		parts = nil
	}
	var parents []*node
	for hops := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		switch name {
		case ".":
			continue
		case "..":
			if len(parents) > 0 {
				cur, parents = parents[len(parents)-1], parents[:len(parents)-1]
			}
			continue
		}
		if !cur.dir {
			return nil, fmt.Errorf("%s: /%s is not a folder: %w", p, cur.rel, ErrNotInImage)
		}
		next, err := m.child(cur, name)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, fmt.Errorf("%s: %w", p, ErrNotInImage)
		}
		if next.info.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > 40 {
				return nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target, err := os.Readlink(m.abs(next.top, next.rel))
			if err != nil {
				return nil, err
			}
			rest := strings.Split(strings.Trim(target, "/"), "/")
			if strings.HasPrefix(target, "/") {
				root, err := m.root()
				if err != nil {
					return nil, err
				}
				cur, parents = root, nil
			}
			parts = append(rest, parts...)
			continue
		}
		parents = append(parents, cur)
		cur = next
	}
	return cur, nil
}

// names returns the names in the folder n of every layer that has it,
// once each, sorted: the candidates for its merged entries.
func (m *merged) names(n *node) ([]string, error) {
	seen := map[string]bool{}
	for _, i := range n.stack {
		entries, err := os.ReadDir(m.abs(i, n.rel))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			seen[e.Name()] = true
		}
	}
	sorted := make([]string, 0, len(seen))
	for name := range seen {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	return sorted, nil
}

// copy writes n to dest: a non-folder as the file dest, a folder merged
// into dest.
func (m *merged) copy(ctx context.Context, n *node, dest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.dir {
		return m.copyEntry(m.abs(n.top, n.rel), n.info, dest)
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	sorted, err := m.names(n)
	if err != nil {
		return err
	}
	for _, name := range sorted {
		c, err := m.child(n, name)
		if err != nil {
			return err
		}
		if c == nil {
			continue // whited out
		}
		if err := m.copy(ctx, c, filepath.Join(dest, name)); err != nil {
			return err
		}
	}
	return m.setMeta(dest, n.info)
}

func (m *merged) copyEntry(src string, info fs.FileInfo, dest string) error {
	switch {
	case info.Mode().IsRegular():
		if err := copyFile(src, dest, info.Mode().Perm()); err != nil {
			return err
		}
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		os.Remove(dest)
		if err := os.Symlink(target, dest); err != nil {
			return err
		}
	case !m.opts.Special:
		if m.opts.Log != nil {
			fmt.Fprintf(m.opts.Log, "left out %s: %s\n", dest, info.Mode().Type())
		}
		return nil
	default:
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok || os.Geteuid() != 0 {
			return fmt.Errorf("%s: cannot copy %s out of the image", src, info.Mode().Type())
		}
		os.Remove(dest)
		if err := unix.Mknod(dest, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	return m.setMeta(dest, info)
}

func copyFile(src, dest string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm|0o200)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

// setMeta gives dest the owner (as root), mode and modification time of
// the image's entry.
func (m *merged) setMeta(dest string, info fs.FileInfo) error {
	st, _ := info.Sys().(*syscall.Stat_t)
	if st != nil && os.Geteuid() == 0 {
		if err := os.Lchown(dest, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		keep := fs.ModePerm | fs.ModeSticky
		if m.opts.Special {
			keep |= fs.ModeSetuid | fs.ModeSetgid
		}
		if err := os.Chmod(dest, info.Mode()&keep); err != nil {
			return err
		}
	}
	mt := unix.NsecToTimespec(info.ModTime().UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, dest, []unix.Timespec{mt, mt}, unix.AT_SYMLINK_NOFOLLOW)
}
