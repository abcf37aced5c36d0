package dsl

import (
	"slices"

	ispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-build/strata/internal/environ"
)

// Steps returns the image's steps in the order they run.
// Each import step is copied too, so changing a returned step's
// destination, mode or owner cannot change the definition (which other
// images may share); its Source is shared and must be treated as
// read-only.
func (i *Image) Steps() []Step {
	out := slices.Clone(i.steps)
	for n, st := range out {
		if st.Import != nil {
			im := *st.Import
			im.Mode = copyPtr(im.Mode)
			im.UID, im.GID = copyPtr(im.UID), copyPtr(im.GID)
			out[n].Import = &im
		}
	}
	return out
}

// Config applies the definitions of the node's chain, root first, on top
// of base (the config of the external base; zero for scratch) and returns
// the image config the node is tagged with.
func (n *Node) Config(base ispec.ImageConfig) ispec.ImageConfig {
	cfg := base
	var env []string // KEY=value, set over base.Env in order
	cfg.Entrypoint = slices.Clone(base.Entrypoint)
	cfg.Cmd = slices.Clone(base.Cmd)
	labels := map[string]string{}
	for k, v := range base.Labels {
		labels[k] = v
	}
	for _, c := range n.Chain() {
		img := c.Image
		env = appendKVs(env, img.env)
		for _, l := range img.labels {
			labels[l.k] = l.v
		}
		for _, v := range img.volumes {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
		for _, p := range img.ports {
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
		if img.entry != nil {
			cfg.Entrypoint = slices.Clone(*img.entry)
			// As in Dockerfiles, a new entrypoint drops inherited
			// arguments that were meant for the old one.
			if img.cmd == nil {
				cfg.Cmd = nil
			}
		}
		if img.cmd != nil {
			cfg.Cmd = slices.Clone(*img.cmd)
		}
		if img.workDir != "" {
			cfg.WorkingDir = img.workDir
		}
		if img.user != "" {
			cfg.User = img.user
		}
	}
	cfg.Env = environ.Merge(base.Env, env...)
	if len(labels) > 0 {
		cfg.Labels = labels
	} else {
		cfg.Labels = nil
	}
	return cfg
}

// StepEnv returns the environment this node's steps see on top of the
// runtime's defaults: the inherited and own image environment followed by
// the build-only environment.
func (n *Node) StepEnv(base []string) []string {
	var env []string
	for _, c := range n.Chain() {
		env = appendKVs(env, c.Image.env)
	}
	return environ.Merge(base, appendKVs(env, n.Image.buildEnv)...)
}

// appendKVs appends kvs to env as KEY=value strings.
func appendKVs(env []string, kvs []kv) []string {
	for _, e := range kvs {
		env = append(env, e.k+"="+e.v)
	}
	return env
}

// StepWorkDir is the folder the node's steps start in.
func (n *Node) StepWorkDir(base string) string {
	wd := base
	for _, c := range n.Chain() {
		if c.Image.workDir != "" {
			wd = c.Image.workDir
		}
	}
	if wd == "" {
		wd = "/"
	}
	return wd
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
