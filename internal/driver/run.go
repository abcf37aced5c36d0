package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
