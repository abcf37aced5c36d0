package layer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/internal/procstat"
)

// The encode bench answers two questions of issue 14: does one layer's
// encoding use every core (CPU time over wall time near GOMAXPROCS), and
// how much memory does a commit need at its peak, mksquashfs included.
// Each encode runs in a child process so its figures are its own; runs are
// interleaved so the machine's load falls on all of them alike.

// encodeWorkload is a tree the bench encodes, generated once under
// $TMPDIR/strata-bench-NAME and kept for reruns.
type encodeWorkload struct {
	name string
	desc string
	gen  func(t *testing.T, root string)
}

var encodeWorkloads = []encodeWorkload{
	{"w1", "20,000 small files + 100 MiB random", func(t *testing.T, root string) {
		genSmall(t, filepath.Join(root, "small"), 20000, func(r *mrand.Rand) int { return 256 + r.IntN(8<<10) })
		genRandom(t, filepath.Join(root, "big"), 10, 10<<20)
	}},
	{"w2", "parts of /usr + 20,000 1-KiB files + 200 MiB random", func(t *testing.T, root string) {
		must(t, os.MkdirAll(filepath.Join(root, "usr"), 0o755))
		// Real binaries, headers, scripts and man pages: what a package
		// install writes. Not all of /usr, so a run stays minutes long.
		for _, d := range strings.Split(envOr("STRATA_BENCH_USR", "/usr/include,/usr/lib/python3.11"), ",") {
			if _, err := os.Stat(d); err != nil {
				continue
			}
			dst := filepath.Join(root, filepath.Dir(d))
			sh(t, fmt.Sprintf("mkdir -p %q && cp -a %q %q", dst, d, dst))
		}
		genSmall(t, filepath.Join(root, "small"), 20000, func(*mrand.Rand) int { return 1 << 10 })
		genRandom(t, filepath.Join(root, "big"), 20, 10<<20)
	}},
}

func genSmall(t *testing.T, dir string, n int, size func(*mrand.Rand) int) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	var b bytes.Buffer
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/200))
		if i%200 == 0 {
			must(t, os.MkdirAll(d, 0o755))
		}
		sz := size(rng)
		b.Reset()
		for b.Len() < sz {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(" \n"[min(rng.IntN(12), 1)^1])
		}
		must(t, os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), b.Bytes()[:sz], 0o644))
	}
}

func genRandom(t *testing.T, dir string, n, size int) {
	must(t, os.MkdirAll(dir, 0o755))
	buf := make([]byte, size)
	for i := range n {
		_, _ = rand.Read(buf)
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%02d", i)), buf, 0o644))
	}
}

func (w encodeWorkload) tree(t *testing.T) string {
	dir := filepath.Join(os.TempDir(), "strata-bench-"+w.name)
	root := filepath.Join(dir, "tree")
	stamp := filepath.Join(dir, ".complete")
	if _, err := os.Stat(stamp); err == nil {
		return root
	}
	must(t, os.RemoveAll(dir))
	w.gen(t, root)
	must(t, os.WriteFile(stamp, nil, 0o644))
	return root
}

// TestEncodeBenchChild is the child of TestPrintEncodeBench: one Write.
// STRATA_BENCH_PROFILE=DIR also writes its CPU and heap profiles there.
func TestEncodeBenchChild(t *testing.T) {
	spec := os.Getenv("STRATA_ENCODE_CHILD")
	if spec == "" {
		t.Skip("only run as a child of TestPrintEncodeBench")
	}
	parts := strings.SplitN(spec, "|", 4)
	typ, mode, dir, out := parts[0], parts[1], parts[2], parts[3]
	squashfsDirMode = mode != "tar"
	opts := WriteOptions{SquashfsWriter: SquashfsMksquashfs}
	if mode == "native" {
		opts.SquashfsWriter = SquashfsNative
	}
	// As the sandbox's commit finisher runs it (runtime/commit.go).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(EncoderGCPercent)
	}
	prof := os.Getenv("STRATA_BENCH_PROFILE")
	if prof != "" {
		f, err := os.Create(filepath.Join(prof, typ+"-"+mode+".cpu"))
		must(t, err)
		must(t, pprof.StartCPUProfile(f))
		runtime.MemProfileRate = 4 << 10
		stop := peakHeapProfile(t, filepath.Join(prof, typ+"-"+mode+".peakheap"))
		defer stop()
	}
	run0, wait0 := schedstat()
	start := time.Now()
	res, err := Write(context.Background(), dir, layertype.Type(typ), out, opts)
	wall := time.Since(start)
	run1, wait1 := schedstat()
	if prof != "" {
		pprof.StopCPUProfile()
		for _, p := range []string{"heap", "allocs"} {
			f, err := os.Create(filepath.Join(prof, typ+"-"+mode+"."+p))
			must(t, err)
			must(t, pprof.Lookup(p).WriteTo(f, 0))
			f.Close()
		}
	}
	must(t, err)
	must(t, json.NewEncoder(os.Stdout).Encode(res))
	fmt.Printf("%d %d %d\n", run1-run0, wait1-wait0, wall)
}

// schedstat sums, over this process's threads, the nanoseconds they ran
// and waited on a run queue. On a machine other jobs keep busy, running
// plus waiting over wall time is how many cores the encode would have
// used on its own, where CPU over wall time only says what it got.
func schedstat() (run, wait int64) {
	paths, _ := filepath.Glob("/proc/self/task/*/schedstat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r, w int64
		if _, err := fmt.Sscan(string(b), &r, &w); err == nil {
			run, wait = run+r, wait+w
		}
	}
	return run, wait
}

// peakHeapProfile writes the heap profile whenever the heap in use reaches
// a new high, so the profile shows what the peak holds (run the child with
// GOGC=off GOMEMLIMIT=20MiB so the profile, made at each GC, is current).
func peakHeapProfile(t *testing.T, path string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var top uint64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > top+(1<<20) {
				top = v
				var b bytes.Buffer
				must(t, pprof.Lookup("heap").WriteTo(&b, 0))
				must(t, os.WriteFile(path, b.Bytes(), 0o644))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// encodeRun is one measured run.
type encodeRun struct {
	wall, cpu float64 // seconds; cpu is user+sys of the process tree
	wanted    float64 // cores our own process ran or waited for (schedstat)
	maxrss    float64 // MiB: the biggest single process (wait4)
	sumrss    float64 // MiB: peak of the sum over the process tree (sampled)
	size      int64
}

// encoder is a row of the table: ours (a child running Write) or a
// reference shell pipeline.
type encoder struct {
	name    string
	ceiling string // the row whose wall time this one is compared to
	id      string // "TYPE|MODE" of our rows
	run     func(t *testing.T, dir, tmp string) encodeRun
}

// TestPrintEncodeBench prints, per workload and encoder, the median (min–max)
// of wall time, CPU time, CPU/wall and peak RSS over STRATA_BENCH_REPS
// interleaved runs (default 3), and wall time relative to the reference
// tool. Gated by STRATA_BENCH=1; STRATA_BENCH_WORKLOADS picks workloads
// (default "w1,w2").
func TestPrintEncodeBench(t *testing.T) {
	if os.Getenv("STRATA_BENCH") != "1" {
		t.Skip("set STRATA_BENCH=1 to measure layer encoding")
	}
	reps, err := strconv.Atoi(envOr("STRATA_BENCH_REPS", "3"))
	must(t, err)
	pick := strings.Split(envOr("STRATA_BENCH_WORKLOADS", "w1,w2"), ",")
	encoders := []encoder{
		{"`tar -cf - DIR \\| zstd -1 -T0`", "", "", shellEncoder("tar -cf - -C %[1]q . | zstd -1 -T0 -q -c | wc -c")},
		{"strata tar+zstd", "`tar -cf - DIR \\| zstd -1 -T0`", "tar+zstd|", ourEncoder(layertype.TarZstd, "")},
		{"`tar -cf - DIR \\| pigz -1`", "", "", shellEncoder("tar -cf - -C %[1]q . | pigz -1 -c | wc -c")},
		{"strata tar+gzip", "`tar -cf - DIR \\| pigz -1`", "tar+gzip|", ourEncoder(layertype.TarGzip, "")},
		{"`mksquashfs DIR -comp zstd -Xcompression-level 3`", "", "", shellEncoder("mksquashfs %[1]q %[2]q/ref.sqfs -noappend -comp zstd -Xcompression-level 3 -no-progress -quiet >/dev/null && stat -c %%s %[2]q/ref.sqfs")},
		{"strata squashfs (folder mode)", "`mksquashfs DIR -comp zstd -Xcompression-level 3`", "squashfs|dir", ourEncoder(layertype.Squashfs, "dir")},
		{"strata squashfs (-tar mode)", "`mksquashfs DIR -comp zstd -Xcompression-level 3`", "squashfs|tar", ourEncoder(layertype.Squashfs, "tar")},
		{"strata squashfs (native writer)", "strata tar+zstd", "squashfs|native", ourEncoder(layertype.Squashfs, "native")},
		{"strata erofs (mkfs.erofs lz4)", "strata tar+zstd", "erofs|", ourEncoder(layertype.Erofs, "")},
	}
	_, noMksquashfs := exec.LookPath("mksquashfs")
	_, noErofs := exec.LookPath("mkfs.erofs")
	encoders = slices.DeleteFunc(encoders, func(e encoder) bool {
		mks := strings.Contains(e.name+e.ceiling, "mksquashfs") && e.id != "squashfs|native"
		return (mks && noMksquashfs != nil) || (strings.HasPrefix(e.id, "erofs") && noErofs != nil)
	})
	// STRATA_BENCH_BASELINE names a test binary of an earlier commit: its
	// encodes run interleaved with ours, as rows marked "before".
	if old := os.Getenv("STRATA_BENCH_BASELINE"); old != "" {
		var both []encoder
		for _, e := range encoders {
			both = append(both, e)
			if e.ceiling != "" {
				typ, mode, _ := strings.Cut(e.id, "|")
				both = append(both, encoder{"before: " + e.name, e.ceiling, "", childEncoder(old, layertype.Type(typ), mode)})
			}
		}
		encoders = both
	}
	fmt.Printf("\nGOMAXPROCS=%d, %d runs each, interleaved; load average before: %s\n", runtime.GOMAXPROCS(0), reps, procstat.LoadAverage())
	for _, w := range encodeWorkloads {
		if !slices.Contains(pick, w.name) {
			continue
		}
		dir := w.tree(t)
		tmp := t.TempDir()
		tarSize := shellSize(t, fmt.Sprintf("tar -cf - -C %q . | wc -c", dir)) // also warms the page cache
		runs := make([][]encodeRun, len(encoders))
		for range reps {
			for i, e := range encoders {
				runs[i] = append(runs[i], e.run(t, dir, tmp))
			}
		}
		fmt.Printf("\n%s (%s): %s, %.0f MiB as tar; load average after: %s\n\n", w.name, w.desc, dir, float64(tarSize)/(1<<20), procstat.LoadAverage())
		fmt.Println("| encoder | wall s | × ceiling | cpu s | cpu/wall | cores wanted by strata's process | peak RSS MiB (sum of processes) | largest process MiB | size/tar |")
		fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
		med := map[string]float64{}
		for i, e := range encoders {
			med[e.name] = median(runs[i], func(r encodeRun) float64 { return r.wall })
		}
		for i, e := range encoders {
			rs := runs[i]
			ratio, wanted := "—", "—"
			if e.ceiling != "" {
				ratio = fmt.Sprintf("%.2f", med[e.name]/med[e.ceiling])
			}
			if rs[0].wanted > 0 { // not of a baseline binary without the figure
				wanted = spread(rs, "%.2f", func(r encodeRun) float64 { return r.wanted })
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %.3f |\n", e.name,
				spread(rs, "%.2f", func(r encodeRun) float64 { return r.wall }), ratio,
				spread(rs, "%.2f", func(r encodeRun) float64 { return r.cpu }),
				spread(rs, "%.2f", func(r encodeRun) float64 { return r.cpu / r.wall }), wanted,
				spread(rs, "%.0f", func(r encodeRun) float64 { return r.sumrss }),
				spread(rs, "%.0f", func(r encodeRun) float64 { return r.maxrss }),
				float64(rs[0].size)/float64(tarSize))
		}
	}
}

func median(rs []encodeRun, f func(encodeRun) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// spread formats the median and, over more than one run, the range.
func spread(rs []encodeRun, format string, f func(encodeRun) float64) string {
	s := fmt.Sprintf(format, median(rs, f))
	if len(rs) < 2 {
		return s
	}
	lo, hi := f(rs[0]), f(rs[0])
	for _, r := range rs[1:] {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	return s + " (" + fmt.Sprintf(format, lo) + "–" + fmt.Sprintf(format, hi) + ")"
}

func ourEncoder(typ layertype.Type, mode string) func(t *testing.T, dir, tmp string) encodeRun {
	return childEncoder(os.Args[0], typ, mode)
}

// childEncoder runs TestEncodeBenchChild of the test binary bin.
func childEncoder(bin string, typ layertype.Type, mode string) func(t *testing.T, dir, tmp string) encodeRun {
	return func(t *testing.T, dir, tmp string) encodeRun {
		out := filepath.Join(tmp, "blob")
		cmd := exec.Command(bin, "-test.run", "^TestEncodeBenchChild$")
		cmd.Env = append(os.Environ(), "STRATA_ENCODE_CHILD="+string(typ)+"|"+mode+"|"+dir+"|"+out)
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		r := measure(t, cmd)
		var res Result
		line, rest, _ := strings.Cut(stdout.String(), "\n")
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("child of %s: %v\n%s", typ, err, stdout.String())
		}
		r.size = res.Size
		var run, wait, wall int64
		if _, err := fmt.Sscan(rest, &run, &wait, &wall); err == nil && wall > 0 {
			r.wanted = float64(run+wait) / float64(wall)
		}
		must(t, os.Remove(out))
		return r
	}
}

// shellEncoder runs a pipeline that prints the size of its output;
// %[1]q is the tree, %[2]q a scratch folder.
func shellEncoder(pipeline string) func(t *testing.T, dir, tmp string) encodeRun {
	return func(t *testing.T, dir, tmp string) encodeRun {
		var stdout bytes.Buffer
		cmd := exec.Command("bash", "-o", "pipefail", "-c", fmt.Sprintf(pipeline, dir, tmp))
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		r := measure(t, cmd)
		n, err := strconv.ParseInt(strings.TrimSpace(stdout.String()), 10, 64)
		must(t, err)
		r.size = n
		return r
	}
}

// measure runs cmd, sampling the summed RSS of its process tree every few
// milliseconds (mksquashfs or a pipeline runs beside the process we
// start, so wait4's Maxrss, the largest single process, is not the peak).
func measure(t *testing.T, cmd *exec.Cmd) encodeRun {
	start := time.Now()
	must(t, cmd.Start())
	done := make(chan struct{})
	peak := make(chan float64, 1)
	go func() { peak <- float64(procstat.PeakTreeRSS(cmd.Process.Pid, 5*time.Millisecond, done)) / (1 << 20) }()
	err := cmd.Wait()
	wall := time.Since(start).Seconds()
	close(done)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return encodeRun{wall: wall, cpu: cpu, maxrss: float64(ru.Maxrss) / 1024, sumrss: <-peak}
}
