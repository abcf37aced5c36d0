// Package timings shows where a command's wall time goes, for whoever
// tunes strata or asks why a build is slow: with STRATA_TIMINGS set (to
// anything but "" or "0"), each phase a command marks is printed to
// stderr when it exits. Unset, a mark costs one branch.
package timings

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Env is the variable that turns the report on.
const Env = "STRATA_TIMINGS"

var (
	enabled = os.Getenv(Env) != "" && os.Getenv(Env) != "0"
	start   = time.Now()

	mu     sync.Mutex
	phases []phase
)

type phase struct {
	name string
	took time.Duration
}

// Enabled reports whether phases are recorded.
func Enabled() bool { return enabled }

// Phase starts timing the named phase; calling what it returns ends it.
// Phases may nest or overlap: each is reported on its own line, in the
// order they end, so a nested one is not subtracted from its parent.
func Phase(name string) func() {
	if !enabled {
		return func() {}
	}
	t := time.Now()
	return func() { Record(name, time.Since(t)) }
}

// FromStart records as a phase the time since the program's packages
// started initialising (this package is among the first), until now.
func FromStart(name string) { Record(name, time.Since(start)) }

// Record records a phase whose name is known only once it is over.
func Record(name string, took time.Duration) {
	if !enabled {
		return
	}
	mu.Lock()
	phases = append(phases, phase{name, took})
	mu.Unlock()
}

// Print writes the recorded phases and the time since the program's
// packages were initialised, when enabled.
func Print(w io.Writer) {
	if !enabled {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range phases {
		fmt.Fprintf(w, "strata: timing: %7.1f ms  %s\n", ms(p.took), p.name)
	}
	fmt.Fprintf(w, "strata: timing: %7.1f ms  %s\n", ms(time.Since(start)), "total, from the program's start")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
