package sqfs_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/procstat"
	"github.com/strata-build/strata/storage/layer"
	"github.com/strata-build/strata/storage/layer/sqfs"
)

// The bench compares the native writer with strata's tar+zstd encoding and
// with mksquashfs on one tree. Every encoder runs in a child process, so
// that its peak RSS (wait4's maxrss) is its own and not the test binary's,
// and the runs are interleaved so that the machine's load falls on all of
// them alike.

// The child's mode, tree and output file.
const (
	benchModeEnv = "STRATA_SQFS_BENCH_MODE"
	benchDirEnv  = "STRATA_SQFS_BENCH_DIR"
	benchOutEnv  = "STRATA_SQFS_BENCH_OUT"
)

// TestSqfsBenchChild is one encode in a child process of
// TestPrintSqfsBench.
func TestSqfsBenchChild(t *testing.T) {
	mode, dir, out := os.Getenv(benchModeEnv), os.Getenv(benchDirEnv), os.Getenv(benchOutEnv)
	if mode == "" {
		t.Skip("only run by TestPrintSqfsBench")
	}
	switch {
	case strings.HasPrefix(mode, "native"):
		level, _ := strconv.Atoi(strings.TrimPrefix(mode, "native"))
		if err := writeDir(dir, out, sqfs.Options{Level: level, Verity: true}); err != nil {
			t.Fatal(err)
		}
	case mode == "tarzstd":
		if _, err := layer.Write(context.Background(), dir, layertype.TarZstd, out, layer.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("mode %q", mode)
	}
}

// writeDir walks dir as strata's upper-dir walker does (depth-first, each
// directory's members sorted, hardlinks to the first name) and writes the
// image.
func writeDir(dir, out string, opts sqfs.Options) error {
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := sqfs.NewWriter(f, opts)
	if err != nil {
		return err
	}
	links := map[uint64]string{}
	var walk func(abs, rel string) error
	walk = func(abs, rel string) error {
		d, err := os.Open(abs)
		if err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, n := range names {
			p, name := filepath.Join(abs, n), n
			if rel != "" {
				name = rel + "/" + n
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			h := &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
				ModTime: time.Unix(st.Mtim.Sec, 0), Format: tar.FormatPAX}
			var content io.Reader
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				h.Typeflag, h.Name = tar.TypeDir, name+"/"
			case unix.S_IFLNK:
				h.Typeflag = tar.TypeSymlink
				if h.Linkname, err = os.Readlink(p); err != nil {
					return err
				}
			case unix.S_IFREG:
				h.Typeflag, h.Size = tar.TypeReg, st.Size
				if first, ok := links[st.Ino]; ok && st.Nlink > 1 {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
					break
				}
				links[st.Ino] = name
				if st.Size > 0 {
					cf, err := os.Open(p)
					if err != nil {
						return err
					}
					content = cf
				}
			default:
				continue
			}
			err := w.Add(h, content)
			if c, ok := content.(*os.File); ok {
				c.Close()
			}
			if err != nil {
				return err
			}
			if h.Typeflag == tar.TypeDir {
				if err := walk(p, name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(dir, ""); err != nil {
		w.Close()
		return err
	}
	_, err = w.Close()
	return err
}

type benchRun struct {
	wall time.Duration
	cpu  time.Duration
	rss  int64 // peak, bytes
	size int64
}

// TestPrintSqfsBench prints the figures of the native writer, strata's
// tar+zstd and mksquashfs on a copy of part of /usr/share
// (STRATA_BENCH_SRC, STRATA_BENCH_MB, STRATA_BENCH_RUNS).
func TestPrintSqfsBench(t *testing.T) {
	if os.Getenv("STRATA_BENCH") != "1" {
		t.Skip("set STRATA_BENCH=1")
	}
	need(t, "mksquashfs")
	src := os.Getenv("STRATA_BENCH_SRC")
	if src == "" {
		src = "/usr/share"
	}
	mb := int64(150)
	if v, err := strconv.ParseInt(os.Getenv("STRATA_BENCH_MB"), 10, 64); err == nil {
		mb = v
	}
	tmp := t.TempDir()
	tree := filepath.Join(tmp, "tree")
	files, bytes := copyTree(t, src, tree, mb<<20)
	t.Logf("tree: %d files, %.1f MiB from %s", files, float64(bytes)/(1<<20), src)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := func(mode string) func(out string) *exec.Cmd {
		return func(out string) *exec.Cmd {
			cmd := exec.Command(self, "-test.run=^TestSqfsBenchChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), benchModeEnv+"="+mode, benchDirEnv+"="+tree, benchOutEnv+"="+out)
			return cmd
		}
	}
	encoders := []struct {
		name string
		cmd  func(out string) *exec.Cmd
	}{
		{"native sqfs, zstd 3, verity", child("native3")},
		{"native sqfs, zstd 1, verity", child("native1")},
		{"strata tar+zstd (layer.Write)", child("tarzstd")},
		{"mksquashfs -comp zstd -Xcompression-level 3 -processors 2 -mem 32M", func(out string) *exec.Cmd {
			return exec.Command("mksquashfs", tree, out, "-comp", "zstd", "-Xcompression-level", "3",
				"-noappend", "-no-progress", "-quiet", "-processors", "2", "-mem", "32M")
		}},
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv("STRATA_BENCH_RUNS")); err == nil && v > 0 {
		rounds = v
	}
	runs := make([][]benchRun, len(encoders))
	loadBefore := procstat.LoadAverage()
	for round := range rounds {
		for i, e := range encoders {
			out := filepath.Join(tmp, fmt.Sprintf("out-%d-%d", i, round))
			runs[i] = append(runs[i], measureCmd(t, e.cmd(out), out))
			os.Remove(out)
		}
	}
	loadAfter := procstat.LoadAverage()
	base := median(runs[2], func(r benchRun) float64 { return r.wall.Seconds() })
	fmt.Printf("\nsqfs bench: %d files, %.1f MiB (%s), GOMAXPROCS %d, load before %s, after %s; medians of %d interleaved runs\n\n",
		files, float64(bytes)/(1<<20), src, runtimeProcs(), loadBefore, loadAfter, rounds)
	fmt.Println("| encoder | wall s | × tar+zstd | CPU s | size MiB | peak RSS MiB |")
	fmt.Println("|---|---|---|---|---|---|")
	for i, e := range encoders {
		wall := median(runs[i], func(r benchRun) float64 { return r.wall.Seconds() })
		fmt.Printf("| %s | %.2f | %.2f | %.2f | %.1f | %.1f |\n", e.name, wall, wall/base,
			median(runs[i], func(r benchRun) float64 { return r.cpu.Seconds() }),
			median(runs[i], func(r benchRun) float64 { return float64(r.size) / (1 << 20) }),
			median(runs[i], func(r benchRun) float64 { return float64(r.rss) / (1 << 20) }))
	}
}

func runtimeProcs() int {
	n, _ := strconv.Atoi(os.Getenv("GOMAXPROCS"))
	if n > 0 {
		return n
	}
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		return set.Count()
	}
	return 0
}

func measureCmd(t *testing.T, cmd *exec.Cmd, out string) benchRun {
	t.Helper()
	start := time.Now()
	b, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return benchRun{
		wall: wall,
		cpu:  time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		rss:  ru.Maxrss << 10,
		size: st.Size(),
	}
}

func median(rs []benchRun, f func(benchRun) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// copyTree copies regular files, dirs and symlinks of src in walk order
// until limit bytes of file data are copied.
func copyTree(t *testing.T, src, dst string, limit int64) (files int, total int64) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip
		}
		if total >= limit {
			return filepath.SkipAll
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return nil
			}
			return os.Symlink(l, to)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			files++
			total += int64(len(b))
			return os.WriteFile(to, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, total
}
