package dsl

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
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

func hasPlaceholder(s string) bool { return strings.Contains(s, "${{") }

// source expands the placeholders of an import's source. A local path is
// resolved again from what was written, so that a placeholder may hold an
// absolute path.
func (e *expander) source(src Source) Source {
	switch s := src.(type) {
	case *LocalSource:
		if hasPlaceholder(s.raw) {
			cs := *s
			cs.Path = resolve(s.pos, e.expand(s.raw))
			return &cs
		}
	case *URLSource:
		cs := *s
		cs.URL, cs.SHA256 = e.expand(s.URL), strings.ToLower(e.expand(s.SHA256))
		return &cs
	case *ImageSource:
		cs := *s
		cs.Path = e.expand(s.Path)
		return &cs
	}
	return src
}

// base expands the placeholders of a base.
func (e *expander) base(b Base) Base {
	switch s := b.(type) {
	case *PullBase:
		cs := *s
		cs.Ref, cs.Platform = e.expand(s.Ref), e.expand(s.Platform)
		return &cs
	case *LayoutBase:
		cs := *s
		cs.Tag = e.expand(s.Tag)
		if hasPlaceholder(s.raw) {
			cs.Path = resolve(s.pos, e.expand(s.raw))
		}
		return &cs
	case *TarballBase:
		cs := *s
		cs.Remote.SHA256 = strings.ToLower(e.expand(s.Remote.SHA256))
		if hasPlaceholder(s.raw) {
			if v := e.expand(s.raw); isURL(v) {
				cs.URL, cs.Path = v, ""
			} else {
				cs.URL, cs.Path = "", resolve(s.pos, v)
			}
		}
		return &cs
	}
	return b
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
			if why := destProblem(im.Dest, true); why != "" {
				c.errs = append(slices.Clip(c.errs), fmt.Errorf("%s: image %q: Import of %s: destination %q %s", st.Pos, img.name, im.Source.describe(), im.Dest, why))
			}
			im.Dest = cleanDest(im.Dest)
			im.Source = e.source(im.Source)
			st.Import = &im
		}
		c.steps[n] = st
	}
	c.labelGens = make([]Step, len(img.labelGens))
	for n, st := range img.labelGens {
		st.Script = e.expand(st.Script)
		c.labelGens[n] = st
	}
	c.env, c.buildEnv, c.labels = e.kvs(img.env), e.kvs(img.buildEnv), e.kvs(img.labels)
	c.annots, c.volumes, c.ports = e.kvs(img.annots), e.list(img.volumes), e.list(img.ports)
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
	c.base = e.base(img.base)
	c.binds = make([]Bind, len(img.binds))
	for n, b := range img.binds {
		if hasPlaceholder(b.rawSource) {
			b.Source = resolve(b.Pos, e.expand(b.rawSource))
		}
		b.Dest = e.expand(b.Dest)
		if why := destProblem(b.Dest, false); why != "" {
			c.errs = append(slices.Clip(c.errs), fmt.Errorf("%s: image %q: Bind %s: destination %q %s", b.Pos, img.name, b.Source, b.Dest, why))
		}
		b.Dest = path.Clean(b.Dest)
		c.binds[n] = b
	}
	var missing []string
	for k := range e.missing {
		missing = append(missing, k)
	}
	sort.Strings(missing)
	return &c, e.used, missing
}

// destProblem says why dest cannot be a path in the image, or "": it
// must be absolute, other than / unless rootOK, and hold no NUL, which no
// system call takes (refused here, it would only fail mid-build without
// the Go line that wrote it).
func destProblem(dest string, rootOK bool) string {
	switch {
	case !path.IsAbs(dest) && rootOK:
		return "must be an absolute path in the image"
	case !path.IsAbs(dest) || !rootOK && path.Clean(dest) == "/":
		return "must be an absolute path other than /"
	case strings.ContainsRune(dest, 0):
		return "contains NUL"
	}
	return ""
}
