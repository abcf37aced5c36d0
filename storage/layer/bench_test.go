package layer

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-build/strata/internal/layertype"
)

var (
	benchOnce  sync.Once
	benchDir   string
	benchBytes int64
	benchErr   error
)

// benchTree returns a realistic tree (default ~300 MiB, ~30k files: many
// small text files, some medium and a few large ones, a third of the bytes
// random), generated once per process into $STRATA_BENCH_DIR or a temp dir.
// A tree already present in $STRATA_BENCH_DIR is reused.
func benchTree(tb testing.TB) (string, int64) {
	benchOnce.Do(func() {
		mib := int64(300)
		if s := os.Getenv("STRATA_BENCH_MIB"); s != "" {
			mib, benchErr = strconv.ParseInt(s, 10, 64)
			if benchErr != nil {
				return
			}
		}
		dir := os.Getenv("STRATA_BENCH_DIR")
		if dir == "" {
			dir = filepath.Join(os.TempDir(), fmt.Sprintf("strata-bench-%dmib", mib))
		}
		benchDir = dir
		stamp := filepath.Join(dir, ".complete")
		if b, err := os.ReadFile(stamp); err == nil {
			benchBytes, benchErr = strconv.ParseInt(string(b), 10, 64)
			return
		}
		benchBytes, benchErr = genTree(filepath.Join(dir, "tree"), mib<<20)
		if benchErr == nil {
			benchErr = os.WriteFile(stamp, []byte(strconv.FormatInt(benchBytes, 10)), 0o644)
		}
	})
	if benchErr != nil {
		tb.Fatal(benchErr)
	}
	return filepath.Join(benchDir, "tree"), benchBytes
}

var words = strings.Fields(`the of and to in is for that on with as by this be are from at or an
	config package import return func error value string int main usr lib share bin include
	debian ubuntu version license copyright install build test file path data system service`)

func genTree(root string, total int64) (int64, error) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	var sum int64
	for i := 0; sum < total; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i/1000%100), fmt.Sprintf("s%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return 0, err
			}
		}
		var size int
		switch r := rng.IntN(1000); {
		case r < 900:
			size = 256 + rng.IntN(8<<10) // small: headers, scripts, configs
		case r < 995:
			size = 16<<10 + rng.IntN(240<<10)
		default:
			size = 1<<20 + rng.IntN(15<<20)
		}
		buf := make([]byte, size)
		if rng.IntN(3) == 0 {
			_, _ = rand.Read(buf) // incompressible: already-compressed assets
		} else {
			var b strings.Builder
			for b.Len() < size {
				b.WriteString(words[rng.IntN(len(words))])
				if rng.IntN(12) == 0 {
					b.WriteByte('\n')
				} else {
					b.WriteByte(' ')
				}
			}
			copy(buf, b.String())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), buf, 0o644); err != nil {
			return 0, err
		}
		sum += int64(size)
	}
	return sum, nil
}

func benchWrite(b *testing.B, t layertype.Type) {
	dir, n := benchTree(b)
	out := filepath.Join(b.TempDir(), "blob")
	b.SetBytes(n)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Write(context.Background(), dir, t, out, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteTarZstd measures committing the bench tree as tar+zstd.
func BenchmarkWriteTarZstd(b *testing.B) { benchWrite(b, layertype.TarZstd) }

// BenchmarkWriteTarGzip measures committing the bench tree as tar+gzip.
func BenchmarkWriteTarGzip(b *testing.B) { benchWrite(b, layertype.TarGzip) }

// BenchmarkWriteSquashfs measures committing the bench tree as squashfs.
func BenchmarkWriteSquashfs(b *testing.B) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		b.Skip("needs mksquashfs")
	}
	benchWrite(b, layertype.Squashfs)
}

// TestBenchChild is the child process of TestPrintBenchTable: it runs one
// Write so the parent can read its peak RSS from rusage.
func TestBenchChild(t *testing.T) {
	spec := os.Getenv("STRATA_BENCH_CHILD")
	if spec == "" {
		t.Skip("only run as a child of TestPrintBenchTable")
	}
	parts := strings.SplitN(spec, "|", 3)
	typ, dir, out := parts[0], parts[1], parts[2]
	res, err := Write(context.Background(), dir, layertype.Type(typ), out, WriteOptions{})
	must(t, err)
	must(t, json.NewEncoder(os.Stdout).Encode(res))
}

type benchRow struct {
	name     string
	secs     float64
	size     int64
	maxrssMB float64
}

// TestPrintBenchTable compares our encoders with the reference tools on the
// bench tree and prints a markdown table. Gated by STRATA_BENCH=1.
func TestPrintBenchTable(t *testing.T) {
	if os.Getenv("STRATA_BENCH") != "1" {
		t.Skip("set STRATA_BENCH=1 to compare with tar|zstd, tar|pigz and mksquashfs")
	}
	dir, _ := benchTree(t)
	tmp := t.TempDir()

	// Warm the page cache so every tool reads from memory, and measure the
	// uncompressed tar size used as the common denominator.
	tarSize := shellSize(t, fmt.Sprintf("tar -cf - -C %q . | wc -c", dir))
	shellSize(t, fmt.Sprintf("tar -cf - -C %q . | wc -c", dir))

	var rows []benchRow
	best := func(name string, f func() benchRow) {
		r1, r2 := f(), f()
		if r2.secs < r1.secs {
			r1 = r2
		}
		r1.name = name
		rows = append(rows, r1)
	}
	shell := func(cmd string) func() benchRow {
		return func() benchRow {
			start := time.Now()
			n := shellSize(t, cmd)
			return benchRow{secs: time.Since(start).Seconds(), size: n}
		}
	}
	sq := filepath.Join(tmp, "ref.sqfs")
	best("`tar -cf - DIR | zstd -1 -T0`", shell(fmt.Sprintf("tar -cf - -C %q . | zstd -1 -T0 -q -c | wc -c", dir)))
	best("strata tar+zstd", ours(t, layertype.TarZstd, dir, tmp))
	best("`tar -cf - DIR | pigz -1`", shell(fmt.Sprintf("tar -cf - -C %q . | pigz -1 -c | wc -c", dir)))
	best("strata tar+gzip", ours(t, layertype.TarGzip, dir, tmp))
	best("`mksquashfs -comp zstd` (level 15)", shell(fmt.Sprintf("mksquashfs %q %q -noappend -comp zstd -no-progress -quiet >/dev/null && stat -c %%s %q", dir, sq, sq)))
	best("`mksquashfs -comp zstd -Xcompression-level 3`", shell(fmt.Sprintf("mksquashfs %q %q -noappend -comp zstd -Xcompression-level 3 -no-progress -quiet >/dev/null && stat -c %%s %q", dir, sq, sq)))
	best("strata squashfs (zstd 3)", ours(t, layertype.Squashfs, dir, tmp))

	mib := float64(tarSize) / (1 << 20)
	fmt.Printf("\nTree: %s, %.0f MiB as tar, GOMAXPROCS=%s\n\n", dir, mib, strconv.Itoa(numCPU()))
	fmt.Println("| encoder | MiB/s | ratio | peak RSS |")
	fmt.Println("|---|---:|---:|---:|")
	for _, r := range rows {
		rss := "-"
		if r.maxrssMB > 0 {
			rss = fmt.Sprintf("%.0f MiB", r.maxrssMB)
		}
		fmt.Printf("| %s | %.0f | %.3f | %s |\n", r.name, mib/r.secs, float64(r.size)/float64(tarSize), rss)
	}
}

func numCPU() int { return runtime.GOMAXPROCS(0) }

func shellSize(t *testing.T, cmd string) int64 {
	out, err := exec.Command("bash", "-o", "pipefail", "-c", cmd).Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	must(t, err)
	return n
}

// ours runs Write in a child process (this test binary) to measure it alone.
func ours(t *testing.T, typ layertype.Type, dir, tmp string) func() benchRow {
	return func() benchRow {
		out := filepath.Join(tmp, "blob")
		cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchChild$")
		cmd.Env = append(os.Environ(), "STRATA_BENCH_CHILD="+string(typ)+"|"+dir+"|"+out)
		cmd.Stderr = os.Stderr
		start := time.Now()
		b, err := cmd.Output()
		secs := time.Since(start).Seconds()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, b)
		}
		var res Result
		line, _, _ := strings.Cut(string(b), "\n")
		must(t, json.Unmarshal([]byte(line), &res))
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		return benchRow{secs: secs, size: res.Size, maxrssMB: float64(ru.Maxrss) / 1024}
	}
}
