package dsl

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
)

// DefinitionsFDEnv names the environment variable through which the strata
// CLI tells a definitions package's driver which of its inherited file
// descriptors receives the definitions.
const DefinitionsFDEnv = "STRATA_DEFINITIONS_FD"

// DriverMain is the main function of the driver strata generates for a
// definitions package: it writes the package's targets (see
// WriteDefinitions) to the descriptor named by DefinitionsFDEnv and exits.
// The driver links only this package and the definitions, so a change to
// the definitions relinks a small program; the strata CLI that started it
// does the build.
func DriverMain(pkg string, targets []Target) {
	fd, err := strconv.Atoi(os.Getenv(DefinitionsFDEnv))
	if err != nil || fd < 3 {
		fmt.Fprintf(os.Stderr, "this program hands the image definitions of %s to strata: run strata build (or list, graph, publish) in their folder\n", pkg)
		os.Exit(2)
	}
	f := os.NewFile(uintptr(fd), "strata-definitions")
	w := bufio.NewWriter(f)
	err = WriteDefinitions(w, pkg, targets)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "handing the definitions of %s to strata: %v\n", pkg, err)
		os.Exit(1)
	}
	os.Exit(0)
}
