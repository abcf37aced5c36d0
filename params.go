package strata

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/runtime"
)

// Build parameters reach definitions twice: package-level definitions read
// them (dsl.Param) while the driver's packages initialise, before main
// parses any flag, so the CLI exports them in STRATA_PARAMS before it
// starts the driver; and the same flags (--set, --params) fill
// Options.Params for ${{KEY}} placeholders, so a value given either way
// means the same.

// ParamFlags are the build-parameter flags (--set, --params) of every
// command that evaluates definitions; BuildFlags holds them too.
type ParamFlags struct {
	set   cmdline.Strings
	files cmdline.Strings
}

// Register defines --set and --params on fs.
func (p *ParamFlags) Register(fs *flag.FlagSet) {
	fs.Var(&p.set, "set", "build parameter `KEY=VALUE`; repeatable, wins over --params")
	fs.Var(&p.files, "params", "`file` of build parameters, one KEY=VALUE a line (# comments); repeatable")
}

// Params returns the parameters the flags give: the files' merged, then
// the --set values over them; nil when there are none.
func (p *ParamFlags) Params() (map[string]string, error) {
	if len(p.set) == 0 && len(p.files) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, f := range p.files {
		m, err := ReadParamsFile(f)
		if err != nil {
			return nil, cmdline.UsageError{Err: err}
		}
		for k, v := range m {
			out[k] = v
		}
	}
	for _, s := range p.set {
		k, v, err := parseParam(s)
		if err != nil {
			return nil, cmdline.UsageError{Err: fmt.Errorf("--set %q: %w", s, err)}
		}
		out[k] = v
	}
	return out, nil
}

func parseParam(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return "", "", fmt.Errorf("want KEY=VALUE")
	}
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return "", "", fmt.Errorf("parameter name %q: use letters, digits and _, not starting with a digit", k)
		}
	}
	return k, v, nil
}

// ReadParamsFile reads a parameters file: one KEY=VALUE a line, the value
// taken verbatim after the first "=" (no quoting); blank lines and lines
// starting with # are ignored.
func ReadParamsFile(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("parameters file: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, err := parseParam(strings.TrimLeft(sc.Text(), " \t"))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parameters file %s: %w", file, err)
	}
	return out, nil
}

// sources returns the parameters and the resolver of an evaluation: the
// environment's parameters with Options.Params over them, and a resolver
// that asks registries for the digests of tags and downloads unpinned
// URLs.
func (o Options) sources() (map[string]string, dsl.Resolver, error) {
	params, err := dsl.Params()
	if err != nil {
		return nil, nil, err
	}
	for k, v := range o.Params {
		params[k] = v
	}
	return params, runtime.NewResolver(o.Registry), nil
}
