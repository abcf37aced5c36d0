package layer_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/procstat"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/layer"
)

// defaultBenchBase is the Debian bookworm minbase tarball (mmdebstrap,
// tar+zstd) the unpack table is measured on when STRATA_BENCH_BASE is unset.
const defaultBenchBase = "/var/cache/strata-examples/bookworm-minbase-20261205.tar.zst"

// unpackArchive is one archive of the unpack table, with what the store
// knows of it.
type unpackArchive struct {
	name      string
	path      string
	mediaType string
	digest    digest.Digest
	diffID    digest.Digest
	tarCmds   map[string]string // row name → shell command, DEST for the folder
}

// unpackCase is one row: an archive and a way to extract it into a fresh
// folder, timed.
type unpackCase struct {
	archive *unpackArchive
	name    string
	run     func(t *testing.T, dest string) // dest does not exist yet
	secs    []float64
	syncs   []float64 // the sync right after: what durability would add
}

// TestPrintUnpackTable compares strata's unpack of a base (the rootfs
// tarball and gzip and zstd OCI layers of it) with GNU tar extracting the
// same archive into the same file system, in one run, interleaved, and
// prints medians. Gated by STRATA_BENCH=1; STRATA_BENCH_REPS (default 5)
// sets the repetitions, STRATA_BENCH_ONLY a regexp of the rows to run,
// STRATA_BENCH_BASE the tarball and STRATA_BENCH_DIR where the trees go
// (default under $TMPDIR, which must be on the file system under test).
func TestPrintUnpackTable(t *testing.T) {
	if os.Getenv("STRATA_BENCH") != "1" {
		t.Skip("set STRATA_BENCH=1 to compare unpacking with tar -xf")
	}
	if os.Geteuid() != 0 {
		t.Skip("compares root unpacks (tar restores owners as root only)")
	}
	reps := 5
	if s := os.Getenv("STRATA_BENCH_REPS"); s != "" {
		var err error
		if reps, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	only := regexp.MustCompile(os.Getenv("STRATA_BENCH_ONLY"))
	base := os.Getenv("STRATA_BENCH_BASE")
	if base == "" {
		base = defaultBenchBase
	}
	if _, err := os.Stat(base); err != nil {
		t.Skipf("no base tarball: %v", err)
	}
	dir := os.Getenv("STRATA_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "strata-unpack-bench")
	}
	archives := benchArchives(t, base, filepath.Join(dir, "archives"))
	runs := filepath.Join(dir, fmt.Sprintf("runs-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(runs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Every tree is kept until the end: removing one just before the next
	// timed run slows that run's file creation severalfold on ext4.
	defer func() {
		if os.Getenv("STRATA_BENCH_KEEP") == "" {
			_ = os.RemoveAll(runs)
		}
	}()

	ctx := context.Background()
	var cases []*unpackCase
	for _, a := range archives {
		for _, name := range slices.Sorted(maps.Keys(a.tarCmds)) {
			cmd := a.tarCmds[name]
			cases = append(cases, &unpackCase{archive: a, name: name, run: func(t *testing.T, dest string) {
				must(t, os.Mkdir(dest, 0o755))
				sh := strings.ReplaceAll(cmd, "DEST", strconv.Quote(dest))
				if out, err := exec.Command("bash", "-o", "pipefail", "-c", sh).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", sh, err, out)
				}
			}})
		}
		cases = append(cases, &unpackCase{archive: a, name: "layer.Unpack, no digests", run: func(t *testing.T, dest string) {
			must(t, os.Mkdir(dest, 0o755))
			must(t, layer.Unpack(ctx, a.path, a.mediaType, dest, layer.UnpackOptions{}))
		}})
		cases = append(cases, &unpackCase{archive: a, name: "layer.Unpack, digest + diff ID", run: func(t *testing.T, dest string) {
			must(t, os.Mkdir(dest, 0o755))
			must(t, layer.Unpack(ctx, a.path, a.mediaType, dest, layer.UnpackOptions{Digest: a.digest, DiffID: a.diffID}))
		}})
		st := benchStore(t, filepath.Join(runs, "store-"+a.name), a)
		img := &storage.BaseImage{
			Manifest: v1.Manifest{Layers: []v1.Descriptor{{MediaType: a.mediaType, Digest: a.digest}}},
			Config:   v1.Image{RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{a.diffID}}},
		}
		cases = append(cases, &unpackCase{archive: a, name: "Store.UnpackBase", run: func(t *testing.T, dest string) {
			dirs, err := st.UnpackBase(ctx, img, layer.UnpackOptions{})
			must(t, err)
			// Moved aside so that the next run unpacks again.
			must(t, os.Rename(dirs[0], dest))
		}})
	}
	cases = slices.DeleteFunc(cases, func(c *unpackCase) bool { return !only.MatchString(c.archive.name + " " + c.name) })

	must(t, exec.Command("sync").Run())
	load := procstat.LoadAverage()
	for rep := range reps {
		for i, c := range cases {
			dest := filepath.Join(runs, fmt.Sprintf("r%d-c%d", rep, i))
			// Each run starts with no dirty pages of the one before
			// (the sync after it, below).
			runtime.GC()
			start := time.Now()
			c.run(t, dest)
			c.secs = append(c.secs, time.Since(start).Seconds())
			start = time.Now()
			must(t, exec.Command("sync").Run())
			c.syncs = append(c.syncs, time.Since(start).Seconds())
		}
	}

	fmt.Printf("\nBase: %s; %d runs each, interleaved; GOMAXPROCS=%d; load average before %s, after %s\n\n",
		base, reps, runtime.GOMAXPROCS(0), load, procstat.LoadAverage())
	fmt.Println("| archive | unpacker | median s | min–max s | × tar | × tar, mins | then sync, median s |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, a := range archives {
		// The fastest tar form of this archive, by median and by its
		// quickest run (the one the other sessions disturbed least).
		ref, refMin := 0.0, 0.0
		for _, c := range cases {
			if c.archive == a && a.tarCmds[c.name] != "" {
				if ref == 0 || median(c.secs) < ref {
					ref = median(c.secs)
				}
				if refMin == 0 || slices.Min(c.secs) < refMin {
					refMin = slices.Min(c.secs)
				}
			}
		}
		for _, c := range cases {
			if c.archive != a {
				continue
			}
			ratio, ratioMin := "-", "-"
			if ref > 0 {
				ratio = fmt.Sprintf("%.2f", median(c.secs)/ref)
				ratioMin = fmt.Sprintf("%.2f", slices.Min(c.secs)/refMin)
			}
			fmt.Printf("| %s | %s | %.2f | %.2f–%.2f | %s | %s | %.2f |\n", a.name, c.name, median(c.secs), slices.Min(c.secs), slices.Max(c.secs), ratio, ratioMin, median(c.syncs))
		}
	}
}

// benchArchives makes (once, kept in dir) the archives of the table from
// the tarball base: the tarball itself, and gzip and zstd layers of the
// same tar stream.
func benchArchives(t *testing.T, base, dir string) []*unpackArchive {
	must(t, os.MkdirAll(dir, 0o755))
	gz := filepath.Join(dir, "layer.tar.gz")
	zst := filepath.Join(dir, "layer.tar.zst")
	for p, compress := range map[string]string{gz: "pigz -6", zst: "zstd -3 -T0 -q"} {
		if _, err := os.Stat(p); err == nil {
			continue
		}
		sh := fmt.Sprintf("zstd -dc %q | %s > %q.tmp && mv %q.tmp %q", base, compress, p, p, p)
		if out, err := exec.Command("bash", "-o", "pipefail", "-c", sh).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", sh, err, out)
		}
	}
	ctx := context.Background()
	mk := func(name, path, mediaType string, tarCmds map[string]string) *unpackArchive {
		a := &unpackArchive{name: name, path: path, mediaType: mediaType, tarCmds: tarCmds}
		f, err := os.Open(path)
		must(t, err)
		defer f.Close()
		a.digest, err = digest.FromReader(f)
		must(t, err)
		a.diffID, err = layer.DiffIDOf(ctx, path, mediaType)
		must(t, err)
		return a
	}
	return []*unpackArchive{
		mk("tarball (tar+zstd, mmdebstrap)", base, v1.MediaTypeImageLayerZstd, map[string]string{
			"`tar --zstd -xf`": fmt.Sprintf("tar --zstd -xf %q -C DEST", base),
		}),
		mk("layer tar+gzip (pigz -6)", gz, v1.MediaTypeImageLayerGzip, map[string]string{
			"`tar -xzf`":               fmt.Sprintf("tar -xzf %q -C DEST", gz),
			"`pigz -dc \\| tar -xf -`": fmt.Sprintf("pigz -dc %q | tar -xf - -C DEST", gz),
		}),
		mk("layer tar+zstd (zstd -3)", zst, v1.MediaTypeImageLayerZstd, map[string]string{
			"`tar --zstd -xf`": fmt.Sprintf("tar --zstd -xf %q -C DEST", zst),
		}),
	}
}

// benchStore opens a store at root holding the archive a as a blob.
func benchStore(t *testing.T, root string, a *unpackArchive) *storage.Store {
	st, err := storage.Open(context.Background(), root, storage.OpenOptions{})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	blob := st.BlobPath(a.digest.String())
	must(t, os.MkdirAll(filepath.Dir(blob), 0o755))
	if err := os.Link(a.path, blob); err != nil {
		b, err := os.ReadFile(a.path)
		must(t, err)
		must(t, os.WriteFile(blob, b, 0o644))
	}
	return st
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
