package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/strata-build/strata"
	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/internal/cmdline"
)

// exportParams finds the --set and --params flags in a command line (up
// to "--") and exports the parameters they give in STRATA_PARAMS (see
// dsl.ParamsEnv), merged over what it already holds, so that the driver's
// package-level definitions see them while they initialise: main calls it
// before any command starts a driver.
func exportParams(args []string) error {
	// Only these two flags are read here: the command's own parse, later,
	// judges the rest of the line.
	fs := newFlagSet("params")
	var p strata.ParamFlags
	p.Register(fs)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "set" && name != "params") {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return cmdline.UsageError{Err: fmt.Errorf("flag --%s needs a value", name)}
			}
			i++
			val = args[i]
		}
		if err := fs.Set(name, val); err != nil {
			return err
		}
	}
	m, err := p.Params()
	if err != nil || m == nil {
		return err
	}
	merged := map[string]string{}
	if raw := os.Getenv(dsl.ParamsEnv); raw != "" {
		if err := json.Unmarshal([]byte(raw), &merged); err != nil {
			return fmt.Errorf("%s is not a JSON object of strings: %w", dsl.ParamsEnv, err)
		}
	}
	for k, v := range m {
		merged[k] = v
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	return os.Setenv(dsl.ParamsEnv, string(b))
}
