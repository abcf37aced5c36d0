//go:build mage

package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// samplePeakRSS returns the largest summed resident set of pid and its
// descendants seen every ~10 ms until stop is closed. wait4's figure is
// the largest single process only; a build's memory is the sum of strata,
// its re-executed sandbox child and the helpers it runs beside them.
func samplePeakRSS(pid int, stop <-chan struct{}) int64 {
	page := int64(os.Getpagesize())
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var peak int64
	for {
		if sum := treeRSSPages(pid) * page; sum > peak {
			peak = sum
		}
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// treeRSSPages walks the tree through /proc/PID/task/TID/children rather
// than scanning every process's stat: far fewer reads per sample on a
// machine the benchmark shares, and a process that exits mid-walk is
// only skipped.
func treeRSSPages(root int) int64 {
	var sum int64
	queue := []string{strconv.Itoa(root)}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		statm, err := os.ReadFile("/proc/" + pid + "/statm")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(statm)); len(f) > 1 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
		tasks, _ := os.ReadDir("/proc/" + pid + "/task")
		for _, t := range tasks {
			kids, _ := os.ReadFile("/proc/" + pid + "/task/" + t.Name() + "/children")
			queue = append(queue, strings.Fields(string(kids))...)
		}
	}
	return sum
}
