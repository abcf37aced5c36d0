package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/bytesize"
)

// FreeSpaceFloor is the free space, in bytes, a build needs on the store's
// file system: `strata check` and the start of every build require it, and
// an unpack stops rather than leave less (a 4 MiB gzip tarball can expand
// to gigabytes).
const FreeSpaceFloor = 512 << 20

// ErrFreeSpace is returned (wrapped) when an unpack stopped because it
// would have left less free space than its floor.
var ErrFreeSpace = errors.New("free space below the floor")

// spaceCheckEvery is how many uncompressed bytes an unpack writes between
// two looks at the free space: often enough that it overshoots the floor
// by little, rarely enough that a statfs costs nothing next to the writes.
const spaceCheckEvery = 16 << 20

// spaceGuard reads the uncompressed tar stream of an unpack, which is
// about what the unpack writes, and stops it once the file system of dir
// has less than floor bytes free, checked every spaceCheckEvery bytes
// rather than per file.
type spaceGuard struct {
	r     io.Reader
	dir   string
	floor uint64
	n     int64 // bytes read so far
	next  int64 // when to look again
	err   error // why it stopped, kept since the tar reader and umoci may rewrap it
}

func (g *spaceGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.n >= g.next {
		if err := g.check(); err != nil {
			g.err = err
			return 0, err
		}
		g.next = g.n + spaceCheckEvery
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

func (g *spaceGuard) check() error {
	var st unix.Statfs_t
	if err := unix.Statfs(g.dir, &st); err != nil {
		return fmt.Errorf("free space under %s: %w", g.dir, err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < g.floor {
		written := ""
		if g.r != nil {
			written = " after " + bytesize.Format(g.n) + " of its content"
		}
		return fmt.Errorf("stopped%s: %s left free under %s, less than the %s a build keeps free: %w",
			written, bytesize.Format(int64(free)), g.dir, bytesize.Format(int64(g.floor)), ErrFreeSpace)
	}
	return nil
}

// floor is the free space opts ask an unpack to leave; 0 when unchecked.
func (opts UnpackOptions) floor() uint64 {
	switch {
	case opts.MinFree < 0:
		return 0
	case opts.MinFree == 0:
		return FreeSpaceFloor
	}
	return uint64(opts.MinFree)
}

// watchSpace is the spaceGuard of an unpack strata does not read through
// (unsquashfs writes on its own): it looks at the free space under dir on
// a timer and cancels the returned context when it falls under floor.
// stop ends the watch; lowSpace then says whether it cancelled, and why.
func watchSpace(ctx context.Context, dir string, floor uint64) (_ context.Context, stop func(), lowSpace func() error) {
	if floor == 0 {
		return ctx, func() {}, func() error { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &spaceGuard{dir: dir, floor: floor}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := g.check(); err != nil {
					g.err = err
					cancel()
					return
				}
			}
		}
	}()
	stop = func() {
		cancel()
		wg.Wait()
	}
	return ctx, stop, func() error { return g.err }
}

// squashfsFits refuses the squashfs blob when the sizes of its regular
// files (from unsquashfs's listing, which reads only its tables) would
// leave less than floor bytes free under dest. It errs on the safe side:
// a large sparse file counts at its full size, and a hard link twice.
func squashfsFits(ctx context.Context, unsquashfs, blob, dest string, floor uint64) error {
	out, err := exec.CommandContext(ctx, unsquashfs, "-lls", "-n", blob).Output()
	if err != nil {
		return fmt.Errorf("list its files: %w", err)
	}
	var total uint64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			total += n
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return fmt.Errorf("free space under %s: %w", dest, err)
	}
	if free := st.Bavail * uint64(st.Bsize); total+floor > free {
		return fmt.Errorf("its files hold %s, which would leave less than the %s a build keeps free under %s (%s free): %w",
			bytesize.Format(int64(total)), bytesize.Format(int64(floor)), dest, bytesize.Format(int64(free)), ErrFreeSpace)
	}
	return nil
}
