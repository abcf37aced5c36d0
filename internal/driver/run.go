package driver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FDEnv is the environment variable that tells the driver which descriptor
// to write the definitions to (dsl.DefinitionsFDEnv; repeated here so this
// package does not link dsl, which tests replace with a stand-in).
const FDEnv = "STRATA_DEFINITIONS_FD"

// RunError is returned when the driver fails before it has handed over the
// definitions: a panic or os.Exit while the definitions initialise.
type RunError struct {
	Package string
	Err     error
}

func (e *RunError) Error() string {
	return fmt.Sprintf("the definitions in %s failed while initialising (their output is above): %v", e.Package, e.Err)
}

func (e *RunError) Unwrap() error { return e.Err }

// Run runs the driver, which evaluates the package-level definitions, and
// returns the serialized definitions it hands over on descriptor 3. What the
// definitions print goes to stderr: stdout stays the command's own (strata
// graph --dot > g.dot). Cancelling ctx kills the driver.
func (d *Driver) Run(ctx context.Context, env []string, stderr io.Writer) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("running the definitions of %s: %w", d.Package, err)
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, d.Binary)
	cmd.Env = append(env, FDEnv+"=3")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("running the definitions of %s (%s): %w", d.Package, d.Binary, err)
	}
	w.Close()
	var buf bytes.Buffer
	_, readErr := io.Copy(&buf, r)
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if waitErr != nil {
		var exit *exec.ExitError
		if errors.As(waitErr, &exit) {
			return nil, &RunError{Package: d.Package, Err: waitErr}
		}
		return nil, fmt.Errorf("running the definitions of %s: %w", d.Package, waitErr)
	}
	if readErr != nil {
		return nil, fmt.Errorf("reading the definitions of %s: %w", d.Package, readErr)
	}
	if buf.Len() == 0 {
		return nil, &RunError{Package: d.Package, Err: errors.New("it exited without handing over any definitions")}
	}
	return buf.Bytes(), nil
}

// The definitions document is cached in the driver's entry, one file per
// environment it was made with (docPrefix + documentKey), the newest
// keepDocuments kept: switching between a few parameter sets stays cached.
const (
	docPrefix     = "definitions-"
	keepDocuments = 8
)

// Definitions returns the document Run would: from the driver's cache
// entry when reuse is set, the definitions read nothing but their
// environment while they initialise ([Driver.NotReusable] is ""), and a run
// with the same environment, working folder and user and group ids wrote
// one; otherwise by running the driver, caching what it wrote when it
// may be reused. cached tells which.
func (d *Driver) Definitions(ctx context.Context, env []string, stderr io.Writer, reuse bool) (raw []byte, cached bool, err error) {
	if !reuse || !d.reusable || d.entry == "" {
		raw, err := d.Run(ctx, env, stderr)
		return raw, false, err
	}
	name := docPrefix + documentKey(env) + ".json"
	file := filepath.Join(d.entry, name)
	if raw, err := os.ReadFile(file); err == nil && len(raw) > 0 {
		// Pruning keeps the documents used last.
		now := time.Now()
		_ = os.Chtimes(file, now, now)
		return raw, true, nil
	}
	raw, err = d.Run(ctx, env, stderr)
	if err != nil {
		return nil, false, err
	}
	writeAtomic(d.entry, name, raw)
	pruneDocuments(d.entry)
	return raw, false, nil
}

// documentKey hashes what the driver's run sees besides its inputs: the
// whole environment (parameters travel in it, and definitions may read
// any variable), the working folder and the ids.
func documentKey(env []string) string {
	h := sha256.New()
	field := func(s string) {
		writeLen(h, len(s))
		h.Write([]byte(s))
	}
	field("strata-definitions-document/1")
	sorted := slices.Clone(env)
	slices.Sort(sorted)
	for _, e := range sorted {
		field(e)
	}
	cwd, _ := os.Getwd()
	field(cwd)
	for _, id := range []int{os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid()} {
		field(strconv.Itoa(id))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pruneDocuments removes all but the newest keepDocuments documents of an
// entry. Errors are ignored, as in prune.
func pruneDocuments(entry string) {
	files, err := os.ReadDir(entry)
	if err != nil {
		return
	}
	var docs []aged
	for _, f := range files {
		if !strings.HasPrefix(f.Name(), docPrefix) {
			continue
		}
		if fi, err := f.Info(); err == nil {
			docs = append(docs, aged{filepath.Join(entry, f.Name()), fi.ModTime()})
		}
	}
	removeAllButNewest(docs, keepDocuments)
}
