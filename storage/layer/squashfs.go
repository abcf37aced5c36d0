package layer

// Squashfs layers hold the upper dir in "overlay form". strata's own writer
// (squashfs_native.go, the default) encodes the walk of that form directly;
// with SquashfsMksquashfs they are built by mksquashfs (squashfs-tools) in
// its -tar mode, reading a tar stream strata generates from the walk:
//
//   - whiteouts stay char 0/0 device nodes, as stacker stores them, because
//     the image is mounted (or unpacked) as an overlay lowerdir as it is;
//   - opaque dirs carry both trusted.overlay.opaque=y and user.overlay.opaque=y
//     whatever namespace the build overlay used, so the image works under
//     privileged and userxattr (rootless) overlays alike;
//   - every other overlay xattr (origin, impure, nlink, ...) is dropped: it
//     describes the build overlay, and mksquashfs 4.5 cannot filter xattrs
//     itself (its -xattrs-exclude came in 4.6);
//   - other xattrs (security.capability, user.*) are kept.
//
// mksquashfs -tar also lets strata choose entry order and ownership without
// depending on the host's readdir order.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// mksquashfsMem is mksquashfs's -mem: the memory for its caches and queues.
const mksquashfsMem = "32M"

const mksquashfsMissing = "squashfs layers need mksquashfs: apt-get install squashfs-tools"

var (
	zstdOnce sync.Once
	zstdOK   bool
)

// mksquashfsHasZstd reports whether the installed mksquashfs lists zstd
// among its compressors; Debian's does, minimal builds may not.
func mksquashfsHasZstd(bin string) bool {
	zstdOnce.Do(func() {
		out, _ := exec.Command(bin, "-help").CombinedOutput()
		for line := range bytes.Lines(out) {
			if bytes.Equal(bytes.TrimSpace(line), []byte("zstd")) {
				zstdOK = true
			}
		}
	})
	return zstdOK
}

func writeSquashfs(ctx context.Context, upperDir, outPath string, opts WriteOptions) (res Result, err error) {
	switch opts.SquashfsWriter {
	case "", SquashfsNative:
		return writeSquashfsNative(ctx, upperDir, outPath, opts)
	case SquashfsMksquashfs:
	default:
		return Result{}, fmt.Errorf("squashfs writer %q: want %q or %q", opts.SquashfsWriter, SquashfsNative, SquashfsMksquashfs)
	}
	bin := opts.Mksquashfs
	if bin == "" {
		if bin, err = exec.LookPath("mksquashfs"); err != nil {
			return Result{}, errors.New(mksquashfsMissing)
		}
	}
	comp, mediaType, level := "zstd", MediaTypeSquashfsZstd, 3
	if !mksquashfsHasZstd(bin) {
		comp, mediaType, level = "gzip", MediaTypeSquashfsGzip, 6
	}
	if opts.Level > 0 {
		level = opts.Level
	}
	epoch := strconv.FormatInt(max(opts.epoch().Unix(), 0), 10)
	args := []string{"-", outPath, "-tar", "-noappend",
		"-comp", comp, "-Xcompression-level", strconv.Itoa(level),
		"-all-time", epoch, "-mkfs-time", epoch,
		"-root-mode", "0755", "-root-uid", "0", "-root-gid", "0",
		"-no-exports", "-no-progress", "-quiet",
		"-processors", strconv.Itoa(runtime.GOMAXPROCS(0)),
		// mksquashfs sizes its caches and queues to a quarter of the
		// machine's memory by default (hundreds of MiB on a build host, all
		// of it touched on a big layer). The output does not depend on it,
		// and 32M was as fast as the default on the bench trees while
		// keeping mksquashfs near 50 MiB (issue 14; TestPrintEncodeBench).
		"-mem", mksquashfsMem,
	}

	if squashfsDirMode && squashfsDirModeOK(ctx, upperDir) {
		return runMksquashfsDir(ctx, bin, upperDir, outPath, mediaType, args, opts)
	}

	// A blocking pipe made by hand: splice needs raw fds, and os.Pipe's
	// non-blocking ones would make it spin on EAGAIN.
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return Result{}, fmt.Errorf("squashfs pipe: %w", err)
	}
	pr := os.NewFile(uintptr(fds[0]), "mksquashfs-stdin")
	pipe := &pipeOut{fd: fds[1]}
	// A bigger pipe means fewer context switches between us and mksquashfs.
	_, _ = unix.FcntlInt(uintptr(pipe.fd), unix.F_SETPIPE_SZ, 1<<20)

	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = pr
	cmd.Env = mksquashfsEnv()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		pr.Close()
		unix.Close(pipe.fd)
		return Result{}, fmt.Errorf("start mksquashfs: %w", err)
	}
	pr.Close()

	entries, terr := tarStream(ctx, upperDir, formOverlay, opts, nil, pipe)
	if cerr := unix.Close(pipe.fd); terr == nil && cerr != nil {
		terr = cerr
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return Result{}, ctx.Err()
	case terr != nil && !errors.Is(terr, unix.EPIPE):
		return Result{}, fmt.Errorf("write squashfs layer of %s: %w", upperDir, terr)
	case werr != nil:
		// A broken pipe only means mksquashfs gave up: its message says why.
		return Result{}, fmt.Errorf("mksquashfs %s: %w: %s", outPath, werr, bytes.TrimSpace(stderr.Bytes()))
	case terr != nil:
		return Result{}, fmt.Errorf("write squashfs layer of %s: %w", upperDir, terr)
	}
	if entries == 0 {
		if err := os.Remove(outPath); err != nil {
			return Result{}, fmt.Errorf("remove empty layer blob: %w", err)
		}
		return Result{Empty: true}, nil
	}
	return finishFS(outPath, mediaType, opts)
}

func digestFile(p string) (digest.Digest, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("open layer blob: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("hash layer blob %s: %w", p, err)
	}
	return digest.NewDigest(digest.SHA256, h), n, nil
}

// mksquashfsEnv is the environment of mksquashfs: it refuses
// SOURCE_DATE_EPOCH next to -all-time, which already carries the clamp.
func mksquashfsEnv() []string {
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") {
			env = append(env, e)
		}
	}
	return env
}

// runMksquashfsDir runs mksquashfs in folder mode on upperDir; tarArgs are
// the -tar mode's arguments, whose first two ("-" and outPath) and "-tar"
// it replaces.
func runMksquashfsDir(ctx context.Context, bin, upperDir, outPath, mediaType string, tarArgs []string, opts WriteOptions) (Result, error) {
	args := []string{upperDir, outPath}
	for _, a := range tarArgs[2:] {
		if a != "-tar" {
			args = append(args, a)
		}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = mksquashfsEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("mksquashfs %s: %w: %s", outPath, err, bytes.TrimSpace(out.Bytes()))
	}
	return finishFS(outPath, mediaType, opts)
}
