// Package procstat reads from /proc what the benchmarks and the fault
// runs report beside their figures: the machine's load, and the memory of
// the process trees they time.
package procstat

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// LoadAverage is the 1, 5 and 15 minute load averages, "?" when unknown.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// TreeRSS is the summed resident set, in bytes, of pid and its
// descendants. wait4's figure is the largest single process only; a
// build's memory is the sum of strata, its sandbox children and the
// helpers they run (mksquashfs, a pipeline's other end). The tree is
// walked through /proc/PID/task/TID/children rather than by scanning
// every process: far fewer reads per sample on a shared machine, and a
// process that exits mid-walk is only skipped.
func TreeRSS(pid int) int64 {
	page := int64(os.Getpagesize())
	var sum int64
	queue := []string{strconv.Itoa(pid)}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		statm, err := os.ReadFile("/proc/" + p + "/statm")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(statm)); len(f) > 1 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n * page
		}
		tasks, _ := os.ReadDir("/proc/" + p + "/task")
		for _, t := range tasks {
			kids, _ := os.ReadFile("/proc/" + p + "/task/" + t.Name() + "/children")
			queue = append(queue, strings.Fields(string(kids))...)
		}
	}
	return sum
}

// PeakTreeRSS samples TreeRSS(pid) every interval until stop is closed
// and returns the largest.
func PeakTreeRSS(pid int, every time.Duration, stop <-chan struct{}) int64 {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var peak int64
	for {
		peak = max(peak, TreeRSS(pid))
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}
