package dsl

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-build/strata/internal/unixmode"
)

// Image is an immutable image definition. Each method returns a new *Image
// and leaves its receiver as it was, so one definition can safely be the
// base of many others. The zero value is not useful; start with New.
type Image struct {
	name      string
	defined   Pos // where New was called
	lastEdit  Pos // where the latest method that made this value was called
	base      Base
	basePos   Pos
	steps     []Step
	env       []kv
	buildEnv  []kv
	labels    []kv
	labelGens []Step   // GenerateLabels scripts
	annots    []kv     // manifest annotations of this image only
	volumes   []string // config Volumes
	ports     []string // config ExposedPorts, "PORT/PROTO"
	entry     *[]string
	cmd       *[]string
	workDir   string
	user      string
	buildOnly bool
	binds     []Bind
	types     []LayerType
	caches    []CacheMount
	secrets   []Secret
	tags      []string
	errs      []error
}

type kv struct{ k, v string }

// Step is one step of an image: a Run or an Import, in the order written.
type Step struct {
	// Script is the shell script of a Run step.
	Script string
	// Import is set for an Import step.
	Import *ImportStep
	// Pos is where the step was written.
	Pos Pos
}

// ImportStep copies a Source into the image at Dest.
type ImportStep struct {
	Source Source
	Dest   string
	// Mode, when set, is the mode the Mode option gave, as chmod(2)
	// takes it (0o4755 for a set-user-id 0o755).
	Mode     *uint32
	UID, GID *int
}

// New starts the definition of an image named name. The name tags the
// image in the output layout, prefixes its build output and is its
// hostname during the build, so it must be a lowercase DNS-like label:
// letters, digits, '.', '_' and '-'.
func New(name string) *Image {
	pos := caller()
	img := &Image{name: name, defined: pos, lastEdit: pos}
	if err := checkName(name); err != nil {
		img.errs = append(img.errs, fmt.Errorf("%s: %w", pos, err))
	}
	return img
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("image name is empty")
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("image name %q: use lowercase letters, digits, and '.', '_' or '-' after the first character", name)
		}
	}
	if len(name) > 63 {
		return fmt.Errorf("image name %q is longer than 63 characters", name)
	}
	return nil
}

// clone copies the receiver so that a method can change the copy; slices
// are cloned because appending to a shared backing array would let two
// derived images see each other's steps.
func (i *Image) clone() *Image {
	c := *i
	c.steps = slices.Clone(i.steps)
	c.env = slices.Clone(i.env)
	c.buildEnv = slices.Clone(i.buildEnv)
	c.labels = slices.Clone(i.labels)
	c.labelGens = slices.Clone(i.labelGens)
	c.annots = slices.Clone(i.annots)
	c.volumes = slices.Clone(i.volumes)
	c.ports = slices.Clone(i.ports)
	c.errs = slices.Clone(i.errs)
	c.binds = slices.Clone(i.binds)
	c.types = slices.Clone(i.types)
	c.caches = slices.Clone(i.caches)
	c.secrets = slices.Clone(i.secrets)
	c.tags = slices.Clone(i.tags)
	c.lastEdit = caller()
	return &c
}

func (i *Image) fail(format string, args ...any) {
	i.errs = append(i.errs, fmt.Errorf("%s: image %q: %s", i.lastEdit, i.name, fmt.Sprintf(format, args...)))
}

// Name is the image's name.
func (i *Image) Name() string { return i.name }

// Defined is where New was called for this image.
func (i *Image) Defined() Pos { return i.defined }

// From sets the base the image's steps run on: Scratch(), Layout(...) or
// another *Image. Setting it twice keeps the last one.
func (i *Image) From(base Base) *Image {
	c := i.clone()
	if img, ok := base.(*Image); ok && img == nil || base == nil {
		c.fail("From(nil): the base must be dsl.Scratch(), dsl.Layout(...) or another image")
		return c
	}
	c.base = base
	c.basePos = c.lastEdit
	return c
}

// Run appends a shell step. A script without a "#!" line runs with
// `sh -xe` (each command echoed, the first failure stops it); a script
// that starts with its own "#!" line runs as written.
func (i *Image) Run(script string) *Image {
	c := i.clone()
	if strings.TrimSpace(script) == "" {
		c.fail("Run: the script is empty")
		return c
	}
	c.steps = append(c.steps, Step{Script: script, Pos: c.lastEdit})
	return c
}

// LabelsDir is the folder a GenerateLabels script writes labels into,
// one file per label, as stacker's generate_labels does.
const LabelsDir = "/stacker/oci-labels"

// GenerateLabels adds a script that computes labels of the image's config
// from what its steps built: after the steps, it runs in a throw-away copy
// of the image's rootfs (its file changes are discarded, the image's layer
// never holds them), with LabelsDir empty and writable; each file it
// writes there becomes a label, the file's name the key and its content,
// less one trailing newline, the value. Several scripts run in order. A
// script is part of the cache key like a Run step, and the labels it made
// are kept with the cached layer; they win over Label for the same key.
func (i *Image) GenerateLabels(script string) *Image {
	c := i.clone()
	if strings.TrimSpace(script) == "" {
		c.fail("GenerateLabels: the script is empty")
		return c
	}
	c.labelGens = append(c.labelGens, Step{Script: script, Pos: c.lastEdit})
	return c
}

// LabelScripts returns the GenerateLabels scripts, in order.
func (i *Image) LabelScripts() []Step { return slices.Clone(i.labelGens) }

// Import appends a step that copies src to dest, an absolute path in the
// image. A folder is copied into dest (dest becomes the folder); a file
// goes to dest, or into dest when it ends in "/" (keeping its base name).
//
// While the image's steps run, src is also readable at ImportDir/BASE.
// Imports may share a base name: one file imported to two destinations,
// or a.txt beside FromImage(img, "/out/a.txt"). Each is copied to its
// destination, and ImportDir/BASE shows the last of them in the image's
// order, as stacker's /stacker/imports shows the last import copied there.
func (i *Image) Import(src Source, dest string, opts ...ImportOption) *Image {
	c := i.clone()
	if src == nil {
		c.fail("Import: the source is nil")
		return c
	}
	// dest is checked and cleaned when the definition is evaluated, after
	// its placeholders are expanded (see expandImage).
	spec := importSpec{src: src, dest: dest}
	for _, o := range opts {
		o(&spec)
	}
	st := &ImportStep{Source: src, Dest: spec.dest, UID: spec.uid, GID: spec.gid}
	if spec.mode != nil {
		m := unixmode.Bits(*spec.mode)
		st.Mode = &m
	}
	c.steps = append(c.steps, Step{Import: st, Pos: c.lastEdit})
	return c
}

// Env sets an environment variable in the image config; it is also set
// for this image's steps and inherited by images built on it.
func (i *Image) Env(key, value string) *Image {
	c := i.clone()
	if key == "" || strings.ContainsAny(key, "=\x00") {
		c.fail("Env: invalid variable name %q", key)
		return c
	}
	c.env = setKV(c.env, key, value)
	return c
}

// BuildEnv sets an environment variable for this image's steps only: it is
// not written to the image config and not inherited.
func (i *Image) BuildEnv(key, value string) *Image {
	c := i.clone()
	if key == "" || strings.ContainsAny(key, "=\x00") {
		c.fail("BuildEnv: invalid variable name %q", key)
		return c
	}
	c.buildEnv = setKV(c.buildEnv, key, value)
	return c
}

// Label sets a label in the image config.
func (i *Image) Label(key, value string) *Image {
	c := i.clone()
	if key == "" {
		c.fail("Label: empty key")
		return c
	}
	c.labels = setKV(c.labels, key, value)
	return c
}

// Annotation sets an annotation of the image's manifest. Unlike labels,
// which are config and inherited, annotations describe this image only:
// images built on it do not get them. They win over the build's own
// (org.opencontainers.image.title, revision, ...).
func (i *Image) Annotation(key, value string) *Image {
	c := i.clone()
	if key == "" {
		c.fail("Annotation: empty key")
		return c
	}
	c.annots = setKV(c.annots, key, value)
	return c
}

// Annotations returns the annotations set with Annotation.
func (i *Image) Annotations() map[string]string {
	if len(i.annots) == 0 {
		return nil
	}
	m := make(map[string]string, len(i.annots))
	for _, a := range i.annots {
		m[a.k] = a.v
	}
	return m
}

// Volume adds absolute paths to the config's Volumes: where a runtime
// mounts a volume, inherited by images built on this one.
func (i *Image) Volume(paths ...string) *Image {
	c := i.clone()
	for _, p := range paths {
		if !path.IsAbs(p) {
			c.fail("Volume: %q is not an absolute path", p)
			return c
		}
		if p = path.Clean(p); !slices.Contains(c.volumes, p) {
			c.volumes = append(c.volumes, p)
		}
	}
	return c
}

// Expose adds ports to the config's ExposedPorts, as "8080", "8080/tcp",
// "53/udp" or "9/sctp" (tcp when no protocol is given); inherited by
// images built on this one.
func (i *Image) Expose(ports ...string) *Image {
	c := i.clone()
	for _, p := range ports {
		port, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			c.fail("Expose: %q is not PORT or PORT/tcp|udp|sctp with a port from 1 to 65535", p)
			return c
		}
		if p = strconv.Itoa(n) + "/" + proto; !slices.Contains(c.ports, p) {
			c.ports = append(c.ports, p)
		}
	}
	return c
}

// Entrypoint sets the image's entrypoint. Calling it with no arguments
// clears an inherited entrypoint.
func (i *Image) Entrypoint(args ...string) *Image {
	c := i.clone()
	a := slices.Clone(args)
	c.entry = &a
	return c
}

// Cmd sets the image's default arguments. Calling it with no arguments
// clears inherited ones.
func (i *Image) Cmd(args ...string) *Image {
	c := i.clone()
	a := slices.Clone(args)
	c.cmd = &a
	return c
}

// WorkDir sets the working directory of the image config and of the
// image's later steps. It must be absolute.
func (i *Image) WorkDir(dir string) *Image {
	c := i.clone()
	if why := destProblem(dir, true); why != "" {
		c.fail("WorkDir: %q %s", dir, why)
		return c
	}
	c.workDir = path.Clean(dir)
	return c
}

// User sets the user (name or uid[:gid]) the image's entrypoint runs as.
// Build steps always run as root.
func (i *Image) User(user string) *Image {
	c := i.clone()
	c.user = user
	return c
}

// BuildOnly marks the image as an intermediate: it is built when something
// needs it but never tagged in the output layout.
func (i *Image) BuildOnly() *Image {
	c := i.clone()
	c.buildOnly = true
	return c
}

// IsBuildOnly reports whether BuildOnly was called.
func (i *Image) IsBuildOnly() bool { return i.buildOnly }

// Option is a reusable building block: a function that takes a definition
// and returns a changed one. Teams share Options (and functions returning
// them) as ordinary Go packages.
type Option func(*Image) *Image

// With applies opts in order.
func (i *Image) With(opts ...Option) *Image {
	c := i
	for _, o := range opts {
		if o == nil {
			continue
		}
		c = o(c)
	}
	return c
}

// cleanDest cleans an import destination, keeping a final "/", which
// means "into this folder".
func cleanDest(dest string) string {
	c := path.Clean(dest)
	if strings.HasSuffix(dest, "/") && c != "/" {
		c += "/"
	}
	return c
}

func setKV(list []kv, k, v string) []kv {
	for n := range list {
		if list[n].k == k {
			list[n].v = v
			return list
		}
	}
	return append(list, kv{k, v})
}

func (i *Image) isBase() {}
