package dsl

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ParamsEnv is the environment variable through which the strata CLI hands
// build parameters (--set, --params) to a definitions package as a JSON
// object, before any package-level definition is initialised. Single
// parameters can also come from STRATA_PARAM_<KEY> variables (handy from
// mage); --set wins over both.
const ParamsEnv = "STRATA_PARAMS"

var (
	paramsOnce sync.Once
	params     map[string]string
	paramsErr  error
)

// Params returns the build parameters of this process.
func Params() (map[string]string, error) {
	paramsOnce.Do(func() {
		params = map[string]string{}
		for _, e := range os.Environ() {
			if k, v, ok := strings.Cut(e, "="); ok && strings.HasPrefix(k, "STRATA_PARAM_") {
				params[strings.TrimPrefix(k, "STRATA_PARAM_")] = v
			}
		}
		if raw := os.Getenv(ParamsEnv); raw != "" {
			var m map[string]string
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				paramsErr = fmt.Errorf("%s is not a JSON object of strings: %w", ParamsEnv, err)
				return
			}
			for k, v := range m {
				params[k] = v
			}
		}
	})
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[k] = v
	}
	return out, paramsErr
}

// Param returns the build parameter key as a string, or def when the build
// does not set it. Because definitions are built from the value, an image
// whose definition uses it is rebuilt when it changes, and no other.
func Param(key, def string) string {
	p, _ := Params()
	if v, ok := p[key]; ok {
		return v
	}
	return def
}

// IntParam is Param for a whole number; a value that is not one makes
// Evaluate fail naming the parameter.
func IntParam(key string, def int) int {
	p, _ := Params()
	v, ok := p[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		recordParamError(fmt.Errorf("%s: build parameter %s=%q is not a whole number", caller(), key, v))
		return def
	}
	return n
}

// BoolParam is Param for true/false (also 1/0, yes/no).
func BoolParam(key string, def bool) bool {
	p, _ := Params()
	v, ok := p[key]
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off", "":
		return false
	}
	recordParamError(fmt.Errorf("%s: build parameter %s=%q is not true or false", caller(), key, v))
	return def
}

// RequiredParam returns the build parameter key; when the build does not
// set it, it returns the placeholder ${{key}}, and Evaluate then fails
// before any work, naming the parameter and every definition that needs it.
func RequiredParam(key string) string {
	p, _ := Params()
	if v, ok := p[key]; ok {
		return v
	}
	return "${{" + key + "}}"
}

var (
	paramErrMu sync.Mutex
	paramErrs  []error
)

func recordParamError(err error) {
	paramErrMu.Lock()
	defer paramErrMu.Unlock()
	paramErrs = append(paramErrs, err)
}

func pendingParamErrors() []error {
	paramErrMu.Lock()
	defer paramErrMu.Unlock()
	return append([]error(nil), paramErrs...)
}

// placeholder matches stacker-style ${{KEY}} and ${{KEY:default}}.
var placeholder = regexp.MustCompile(`\$\{\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}\}`)

// expander substitutes placeholders and remembers what it used and what
// was missing.
type expander struct {
	params  map[string]string
	used    map[string]string
	missing map[string]bool
}

func (e *expander) expand(s string) string {
	if !strings.Contains(s, "${{") {
		return s
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		if v, ok := e.params[sub[1]]; ok {
			e.used[sub[1]] = v
			return v
		}
		if strings.Contains(m, ":") {
			return sub[2]
		}
		e.missing[sub[1]] = true
		return m
	})
}

func (e *expander) list(list []string) []string {
	out := make([]string, len(list))
	for n, s := range list {
		out[n] = e.expand(s)
	}
	return out
}

func (e *expander) kvs(list []kv) []kv {
	out := make([]kv, len(list))
	for n, x := range list {
		out[n] = kv{x.k, e.expand(x.v)}
	}
	return out
}

// expandImage returns img with placeholders substituted in every string a
// definition can hold, the parameters it used and the names of those it
// lacked.
func expandImage(img *Image, params map[string]string) (*Image, map[string]string, []string) {
	e := &expander{params: params, used: map[string]string{}, missing: map[string]bool{}}
	c := *img
	c.steps = make([]Step, len(img.steps))
	for n, st := range img.steps {
		st.Script = e.expand(st.Script)
		if st.Import != nil {
			im := *st.Import
			im.Dest = e.expand(im.Dest)
			if u, ok := im.Source.(*URLSource); ok {
				cu := *u
				cu.URL, cu.SHA256 = e.expand(u.URL), e.expand(u.SHA256)
				im.Source = &cu
			}
			st.Import = &im
		}
		c.steps[n] = st
	}
	c.env, c.buildEnv, c.labels = e.kvs(img.env), e.kvs(img.buildEnv), e.kvs(img.labels)
	if img.entry != nil {
		l := e.list(*img.entry)
		c.entry = &l
	}
	if img.cmd != nil {
		l := e.list(*img.cmd)
		c.cmd = &l
	}
	c.workDir, c.user = e.expand(img.workDir), e.expand(img.user)
	c.tags = e.list(img.tags)
	if p, ok := img.base.(*PullBase); ok {
		cp := *p
		cp.Ref = e.expand(p.Ref)
		c.base = &cp
	}
	var missing []string
	for k := range e.missing {
		missing = append(missing, k)
	}
	sort.Strings(missing)
	return &c, e.used, missing
}
