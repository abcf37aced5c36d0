package layer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/layertype"
)

// genTreeOnce generates a tree of mib MiB under dir (reused when a previous
// run completed it).
func genTreeOnce(t *testing.T, dir string, mib int64) string {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	stamp := filepath.Join(dir, ".complete")
	if _, err := os.Stat(stamp); err == nil {
		return tree
	}
	must(t, os.RemoveAll(dir))
	if _, err := genTree(tree, mib<<20); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(stamp, nil, 0o644))
	return tree
}

// TestPrintCommitBench prints how committing a one-file change costs on a
// large base, beside umoci repack (which walks the whole rootfs), and the
// peak memory of committing a large tar layer. Gated by STRATA_BENCH=1;
// STRATA_BENCH_BASE_GIB lists the base sizes (default "1,10") and
// STRATA_BENCH_MEM_MIB the size of the memory test's layer (default 2048).
func TestPrintCommitBench(t *testing.T) {
	if os.Getenv("STRATA_BENCH") != "1" {
		t.Skip("set STRATA_BENCH=1 to measure commits on large bases")
	}
	needRoot(t)
	sizes := strings.Split(envOr("STRATA_BENCH_BASE_GIB", "1,10"), ",")
	fmt.Println("\n| one-file change on a base of | strata commit (tar+gzip, both digests) | `umoci repack` |")
	fmt.Println("|---|---:|---:|")
	for _, s := range sizes {
		gib, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		must(t, err)
		ours, theirs := smallChange(t, gib)
		fmt.Printf("| %d GiB | %.4f s | %s |\n", gib, ours, theirs)
	}

	mib, err := strconv.ParseInt(envOr("STRATA_BENCH_MEM_MIB", "2048"), 10, 64)
	must(t, err)
	tree := genTreeOnce(t, filepath.Join(os.TempDir(), fmt.Sprintf("strata-bench-mem-%dmib", mib)), mib)
	tmp := t.TempDir()
	fmt.Printf("\n| committing a %d MiB tree as | time | peak RSS |\n|---|---:|---:|\n", mib)
	for _, typ := range []layertype.Type{layertype.TarGzip, layertype.TarZstd} {
		r := ours(t, typ, tree, tmp)()
		fmt.Printf("| %s | %.1f s | %.0f MiB |\n", typ, r.secs, r.maxrssMB)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// smallChange mounts an overlay over a base tree of gib GiB, changes one
// file through it, and times strata's commit of the upper dir (best of 3);
// then it times umoci repack of the same change in an umoci bundle of the
// same tree (once: it walks the whole rootfs).
func smallChange(t *testing.T, gib int64) (float64, string) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("strata-bench-base-%dgib", gib))
	tree := genTreeOnce(t, dir, gib<<10)
	tmp := t.TempDir()
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		must(t, os.Mkdir(d, 0o755))
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", tree, upper, work)
	must(t, unix.Mount("overlay", merged, "overlay", 0, opts))
	err := os.WriteFile(filepath.Join(merged, "d00", "s000", "f000000"), []byte("changed\n"), 0o644)
	must(t, unix.Unmount(merged, 0))
	must(t, err)
	best := 1e9
	for range 3 {
		start := time.Now()
		res, err := Write(context.Background(), upper, layertype.TarGzip, filepath.Join(tmp, "blob"), WriteOptions{})
		secs := time.Since(start).Seconds()
		must(t, err)
		if res.Empty || res.Digest == "" || res.DiffID == "" {
			t.Fatalf("commit gave %+v", res)
		}
		best = min(best, secs)
	}

	if _, err := exec.LookPath("umoci"); err != nil {
		return best, "(umoci not installed)"
	}
	layout, bundle := filepath.Join(dir, "umoci-oci"), filepath.Join(dir, "umoci-bundle")
	if _, err := os.Stat(filepath.Join(dir, ".umoci-complete")); err != nil {
		os.RemoveAll(layout)
		os.RemoveAll(bundle)
		sh(t, fmt.Sprintf("umoci init --layout %[1]s && umoci new --image %[1]s:base && umoci unpack --image %[1]s:base %[2]s && cp -a %[3]s/. %[2]s/rootfs/ && umoci repack --refresh-bundle --image %[1]s:base %[2]s", layout, bundle, tree))
		must(t, os.WriteFile(filepath.Join(dir, ".umoci-complete"), nil, 0o644))
	}
	must(t, os.WriteFile(filepath.Join(bundle, "rootfs", "d00", "s000", "f000000"), []byte("changed\n"), 0o644))
	start := time.Now()
	sh(t, fmt.Sprintf("umoci repack --image %s:changed %s", layout, bundle))
	return best, fmt.Sprintf("%.2f s", time.Since(start).Seconds())
}

func sh(t *testing.T, cmd string) {
	t.Helper()
	if out, err := exec.Command("bash", "-ec", cmd).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}
