// Package cmdline reads strata command lines. Two parts read them: the
// strata command, and the root package, which takes `strata build`'s flags
// from STRATA_FLAGS for mage targets; both must accept and refuse the same
// words in the same way.
package cmdline

import (
	"errors"
	"flag"
	"io"
	"path/filepath"
	"regexp"
	"strings"
)

// Parse parses flags that may come before, between or after positional
// arguments ("strata build hello --no-cache"). Arguments after "--" are
// returned untouched, after a "--" element, for commands that pass them on.
// -h returns flag.ErrHelp, printing nothing: help is the caller's to
// print. A bad flag comes back as a FlagError.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, newFlagError(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// FlagError is a command line the flag package refused: an unknown flag,
// a missing or bad value. Its message names the flag as --flag.
type FlagError struct{ Msg string }

func (e FlagError) Error() string { return e.Msg }

// The flag package names flags with one dash ("-jobs"); its messages end
// in, or have before a colon, the flag's name.
var (
	singleDashFlag = regexp.MustCompile(`(^|[ :])-([A-Za-z0-9][-A-Za-z0-9_.]*)(:|$)`)
	notDefined     = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	needsArgument  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// newFlagError rewrites an error of flag.FlagSet.Parse for people.
func newFlagError(err error) FlagError {
	msg := err.Error()
	if m := notDefined.FindStringSubmatch(msg); m != nil {
		return FlagError{"unknown flag --" + m[1]}
	}
	if m := needsArgument.FindStringSubmatch(msg); m != nil {
		return FlagError{"flag --" + m[1] + " needs a value"}
	}
	msg = strings.Replace(msg, " for flag -", " for -", 1)
	return FlagError{singleDashFlag.ReplaceAllString(msg, "$1--$2$3")}
}

// UsageError is a request that cannot be carried out as given (a bad flag
// value, a build-only image to publish), as opposed to a failure of the
// work: the strata command reports it as a misuse, with exit status 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

func (e UsageError) Unwrap() error { return e.Err }

// Strings is a repeatable flag's values, in the order given.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, ",") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }

// IsPackagePattern reports whether a command-line argument names Go
// packages rather than an image: image names never start with "." or "/"
// and never hold a "/"; a package path never holds a ":", which
// NAME:/PATH (strata grab) does.
func IsPackagePattern(arg string) bool {
	if strings.Contains(arg, ":") {
		return false
	}
	return arg == "." || arg == ".." || strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") ||
		filepath.IsAbs(arg) || strings.Contains(arg, "/")
}
