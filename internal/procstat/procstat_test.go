package procstat

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statmRSS is one process's resident set in bytes, 0 when unknown.
func statmRSS(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * int64(os.Getpagesize())
}

// A shell waiting for its sleep: the tree is the shell and the sleep,
// more than the shell alone.
func TestTreeRSSCountsDescendants(t *testing.T) {
	sh := exec.Command("sh", "-c", "sleep 30; :")
	if err := sh.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer sh.Process.Kill()
	var tree, alone int64
	for range 200 { // until the sleep has started
		tree, alone = TreeRSS(sh.Process.Pid), statmRSS(sh.Process.Pid)
		if alone > 0 && tree > alone {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if alone <= 0 || tree <= alone {
		t.Errorf("tree %d bytes, the shell alone %d: its child is not counted", tree, alone)
	}
	stop := make(chan struct{})
	close(stop)
	if PeakTreeRSS(os.Getpid(), time.Millisecond, stop) <= 0 {
		t.Error("PeakTreeRSS sampled nothing")
	}
	if f := strings.Fields(LoadAverage()); len(f) != 3 {
		t.Errorf("LoadAverage = %q", LoadAverage())
	}
}
