//go:build mage

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fuzzMinimizeTime bounds how long go test spends minimizing each new
// input. Targets that set up a store and a layout per input run a few
// dozen inputs a second, and the default (60s) would spend a whole run
// minimizing one input: the inputs executed would measure minimization.
// At 5s, FuzzImportLayout still spent most of a 20s run minimizing (66
// inputs executed); a second is thousands of tries for the fast targets.
const fuzzMinimizeTime = "1s"

// Fuzz runs every fuzz target of the module (each func FuzzX(f
// *testing.F) in a _test.go file) for STRATA_FUZZ_TIME (default 60s; a
// duration, or Nx for N inputs) with go test -fuzz, one after the other,
// then prints a markdown table of what each executed and found. It fails
// if any target failed, naming where go test wrote the failing input
// (under the package's testdata/fuzz/, ready to commit as a regression
// seed).
func Fuzz() error {
	fuzzTime := os.Getenv("STRATA_FUZZ_TIME")
	if fuzzTime == "" {
		fuzzTime = "60s"
	}
	if _, err := time.ParseDuration(fuzzTime); err != nil && !regexp.MustCompile(`^[0-9]+x$`).MatchString(fuzzTime) {
		return fmt.Errorf("STRATA_FUZZ_TIME=%q: want a duration (60s, 5m) or a count of inputs (1000x)", fuzzTime)
	}
	targets, err := fuzzTargets(".")
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return fmt.Errorf("no fuzz targets found")
	}
	var results []fuzzResult
	for _, t := range targets {
		fmt.Printf("+ go test -run '^$' -fuzz '^%s$' -fuzztime %s -fuzzminimizetime %s %s\n", t.name, fuzzTime, fuzzMinimizeTime, t.pkg)
		results = append(results, runFuzz(t, fuzzTime))
	}
	printFuzzTable(os.Stdout, results)
	var failed []string
	for _, r := range results {
		if r.failed {
			failed = append(failed, fmt.Sprintf("%s (%s): %s", r.name, r.pkg, r.where))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("fuzz targets failed:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

type fuzzTarget struct{ name, pkg string }

// fuzzDecl matches the declaration of a fuzz target. Targets are found in
// the sources rather than listed here, so a new one is run without anyone
// remembering to add it.
var fuzzDecl = regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]*)\(\w+ \*testing\.F\)`)

// fuzzTargets returns the fuzz targets under root, by package then name.
func fuzzTargets(root string) ([]fuzzTarget, error) {
	var out []fuzzTarget
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// As the go command: testdata, hidden and _ folders hold no
			// packages of the module.
			if p != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(filepath.Dir(p))
		if filepath.Dir(p) == "." {
			pkg = "."
		}
		for _, m := range fuzzDecl.FindAllSubmatch(src, -1) {
			out = append(out, fuzzTarget{name: string(m[1]), pkg: pkg})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b fuzzTarget) int {
		return strings.Compare(a.pkg+" "+a.name, b.pkg+" "+b.name)
	})
	return out, err
}

type fuzzResult struct {
	fuzzTarget
	elapsed     string // as go test last reported it
	execs       int64
	interesting int64
	failed      bool
	where       string // the failing input, or why there is none
	raced       bool   // ended by golang/go#75804, corpus replayed clean
}

// fuzzStatus is go test's periodic status line, e.g.
// "fuzz: elapsed: 21s, execs: 9023 (711/sec), new interesting: 18 (total: 31)".
var fuzzStatus = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: ([0-9]+) \([^)]*\)(?:, new interesting: ([0-9]+))?`)

func runFuzz(t fuzzTarget, fuzzTime string) fuzzResult {
	r := fuzzResult{fuzzTarget: t}
	cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$", "-fuzztime", fuzzTime, "-fuzzminimizetime", fuzzMinimizeTime, t.pkg)
	var out bytes.Buffer
	// Shown as it comes, so a long run is seen progressing.
	cmd.Stdout = io.MultiWriter(os.Stdout, &out)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	parseFuzzOutput(&r, out.String())
	if err != nil && r.where == "" && onlyDeadlineRace(out.String()) {
		// Go 1.26's fuzz coordinator can report the end of -fuzztime as a
		// failure, "context deadline exceeded" with no input written, when
		// a worker is slow to stop (golang/go#75804, fixed in Go 1.27). It
		// found nothing: replay the target's corpus to be sure.
		replay := exec.Command("go", "test", "-count=1", "-run", "^"+t.name+"$", t.pkg)
		if b, rerr := replay.CombinedOutput(); rerr != nil {
			os.Stdout.Write(b)
			err = fmt.Errorf("after the fuzztime race, replaying the corpus failed: %w", rerr)
		} else {
			r.raced, err = true, nil
		}
	}
	if err != nil {
		r.failed = true
		if r.where == "" {
			r.where = "no input written: " + err.Error() + " (see the output above)"
		}
	}
	return r
}

// onlyDeadlineRace reports whether the only failure go test printed is a
// bare "context deadline exceeded" under the target's --- FAIL line.
func onlyDeadlineRace(out string) bool {
	_, after, ok := strings.Cut(out, "--- FAIL: ")
	if !ok {
		return false
	}
	lines := strings.Split(after, "\n")[1:]
	var msgs []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "FAIL" || strings.HasPrefix(l, "exit status") || strings.HasPrefix(l, "FAIL\t") {
			break
		}
		if l != "" {
			msgs = append(msgs, l)
		}
	}
	return len(msgs) == 1 && msgs[0] == "context deadline exceeded"
}

// parseFuzzOutput fills r from go test's output: the last status line's
// counts, and where a failing input was written.
func parseFuzzOutput(r *fuzzResult, out string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := fuzzStatus.FindStringSubmatch(line); m != nil {
			r.elapsed = m[1]
			r.execs, _ = strconv.ParseInt(m[2], 10, 64)
			if m[3] != "" {
				r.interesting, _ = strconv.ParseInt(m[3], 10, 64)
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Failing input written to "); ok {
			// go test names it relative to the package folder.
			r.where = filepath.ToSlash(filepath.Join(r.pkg, rest))
			r.failed = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "failure while testing seed corpus entry: "); ok {
			// A committed input fails (FuzzX/name) or one added in the
			// code (FuzzX/seed#N): nothing new is written.
			r.where = "seed " + rest + " (an f.Add in the target)"
			if _, name, _ := strings.Cut(rest, "/"); !strings.HasPrefix(name, "seed#") {
				r.where = filepath.ToSlash(filepath.Join(r.pkg, "testdata", "fuzz", rest)) + " (a seed file)"
			}
			r.failed = true
		}
	}
}

func printFuzzTable(w io.Writer, results []fuzzResult) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | package | time | inputs executed | new interesting inputs | failures |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: |")
	var total int64
	var failures int
	for _, r := range results {
		f := 0
		if r.failed {
			f = 1
		}
		failures += f
		total += r.execs
		elapsed := r.elapsed
		if elapsed == "" {
			elapsed = "-"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %d |\n", r.name, r.pkg, elapsed, r.execs, r.interesting, f)
	}
	fmt.Fprintf(w, "| all (%d targets) | | | %d | | %d |\n", len(results), total, failures)
	for _, r := range results {
		if r.raced {
			fmt.Fprintf(w, "\n%s: go test ended with \"context deadline exceeded\" and wrote no input, Go 1.26's fuzztime race (golang/go#75804); its corpus replays clean, so it is not counted as a failure.\n", r.name)
		}
	}
}
