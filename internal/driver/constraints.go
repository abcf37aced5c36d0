package driver

import (
	"bufio"
	"bytes"
	"go/build/constraint"
	"os"
	"strings"
)

// A file of a local package whose build constraint can never hold in the
// driver's build (//go:build mage, //go:build ignore) adds nothing the
// driver links, so the packages it imports need neither hashing nor the
// reuse check: examples/hello's magefile would otherwise bring all of
// strata into its key. Only tags the user invents are taken as false, and
// only while no -tags can be in effect; the operating system, the
// architecture, cgo, the Go release and experiments are left free, since
// the go command that builds the driver, not strata, decides them, and a
// file is followed when any choice of them selects it.

// knownTags are the tags the go command sets by itself, or might.
var knownTags = map[string]bool{
	"unix": true, "cgo": true, "gc": true, "gccgo": true,
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true, "hurd": true, "illumos": true,
	"ios": true, "js": true, "linux": true, "nacl": true, "netbsd": true, "openbsd": true, "plan9": true,
	"solaris": true, "wasip1": true, "windows": true, "zos": true,
	"386": true, "amd64": true, "amd64p32": true, "arm": true, "armbe": true, "arm64": true, "arm64be": true,
	"loong64": true, "mips": true, "mipsle": true, "mips64": true, "mips64le": true, "mips64p32": true,
	"mips64p32le": true, "ppc": true, "ppc64": true, "ppc64le": true, "riscv": true, "riscv64": true,
	"s390": true, "s390x": true, "sparc": true, "sparc64": true, "wasm": true,
	// -race, -msan and -asan set these.
	"race": true, "msan": true, "asan": true,
}

func isKnownTag(tag string) bool {
	return knownTags[tag] || strings.HasPrefix(tag, "go1.") || strings.HasPrefix(tag, "goexperiment.")
}

// tagsMayBeSet reports whether -tags may be in GOFLAGS, from the
// environment or `go env -w`: then no tag can be taken as false. Both are
// part of the key.
func tagsMayBeSet() bool { return goFlagsMention("tags") }

// goFlagsMention reports whether word is in GOFLAGS, from the environment
// or `go env -w`.
func goFlagsMention(word string) bool {
	if strings.Contains(os.Getenv("GOFLAGS"), word) {
		return true
	}
	if f := goEnvFile(); f != "" {
		if data, err := os.ReadFile(f); err == nil && bytes.Contains(data, []byte(word)) {
			return true
		}
	}
	return false
}

// mayBuild reports whether the Go file src may be part of the driver's
// build as far as its //go:build line tells: false only when the line
// cannot hold with the user's own tags unset, whatever the others are.
func mayBuild(src []byte, anyTags bool) bool {
	if anyTags {
		return true
	}
	expr := goBuildLine(src)
	if expr == nil {
		return true
	}
	var free []string
	seen := map[string]bool{}
	expr.Eval(func(tag string) bool {
		if isKnownTag(tag) && !seen[tag] {
			seen[tag] = true
			free = append(free, tag)
		}
		return false
	})
	if len(free) > 12 {
		return true // too many to try: follow it
	}
	for set := 0; set < 1<<len(free); set++ {
		holds := expr.Eval(func(tag string) bool {
			for i, f := range free {
				if f == tag {
					return set&(1<<i) != 0
				}
			}
			return false // one of the user's tags, unset
		})
		if holds {
			return true
		}
	}
	return false
}

// goBuildLine returns the //go:build expression of a file's header, or nil
// when it has none or the header is not one this reads plainly (a block
// comment): the file is then taken as built.
func goBuildLine(src []byte) constraint.Expr {
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case constraint.IsGoBuild(line):
			expr, err := constraint.Parse(line)
			if err != nil {
				return nil
			}
			return expr
		case strings.HasPrefix(line, "//"):
			continue
		default:
			return nil
		}
	}
	return nil
}
