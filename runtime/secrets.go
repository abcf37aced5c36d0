package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime/sandbox"
)

// ReadSecrets reads the value of every secret the nodes declare, by node
// name. It runs before the build does any work, so that a missing secret
// stops the build at once; every missing secret is reported, each naming
// the image, the secret and the Go file:line that declared it. The values
// are held in memory only: they go to the sandbox through a pipe and are
// never part of a cache key, a record, a log or a layer.
func ReadSecrets(nodes []*dsl.Node) (map[string][]sandbox.Secret, error) {
	out := map[string][]sandbox.Secret{}
	var errs []error
	for _, n := range nodes {
		for _, s := range n.Image.Secrets() {
			v, err := secretValue(s.Source)
			if err != nil {
				errs = append(errs, fmt.Errorf("image %q: secret %q (%s): %w", n.Name, s.Name, s.Pos, err))
				continue
			}
			out[n.Name] = append(out[n.Name], sandbox.Secret{Name: s.Name, Value: v})
		}
	}
	return out, errors.Join(errs...)
}

func secretValue(src dsl.SecretSource) ([]byte, error) {
	if src.Env != "" {
		v, ok := os.LookupEnv(src.Env)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", src.Env)
		}
		return []byte(v), nil
	}
	v, err := os.ReadFile(src.File)
	if err != nil {
		// The path is the user's own; the error never holds the content.
		return nil, fmt.Errorf("read %s: %w", src.File, err)
	}
	return v, nil
}

// maskMin is the shortest secret value that is masked in step output:
// masking a one- or two-character value would garble every line.
const maskMin = 4

// maskWriter replaces every secret value in the lines that pass through
// it with "***". Steps should never print a secret; this is a safety net
// for the ones that do by accident, such as `sh -x` echoing an assignment
// (`+ TOKEN=...`). It works on whole lines, so a value split over two
// writes is still caught; a value that spans lines is masked line by line.
type maskWriter struct {
	mu     sync.Mutex
	w      io.Writer
	values [][]byte // longest first, so a value containing another is masked whole
	buf    []byte
}

// newMaskWriter returns w itself when there is nothing to mask.
func newMaskWriter(w io.Writer, secrets []sandbox.Secret) io.Writer {
	var values [][]byte
	for _, s := range secrets {
		// A file's trailing newline is not part of what a step would
		// print; each line of a multi-line value is masked on its own.
		for _, l := range bytes.Split(bytes.TrimSpace(s.Value), []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) >= maskMin {
				values = append(values, l)
			}
		}
	}
	if len(values) == 0 {
		return w
	}
	sort.Slice(values, func(a, b int) bool { return len(values[a]) > len(values[b]) })
	return &maskWriter{w: w, values: values}
}

func (m *maskWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	i := bytes.LastIndexByte(m.buf, '\n')
	if i < 0 {
		return len(p), nil
	}
	if _, err := m.w.Write(m.mask(m.buf[:i+1])); err != nil {
		return 0, err
	}
	m.buf = append(m.buf[:0], m.buf[i+1:]...)
	return len(p), nil
}

// Flush writes a trailing partial line.
func (m *maskWriter) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buf) > 0 {
		m.w.Write(m.mask(m.buf))
		m.buf = m.buf[:0]
	}
}

func (m *maskWriter) mask(b []byte) []byte {
	out := bytes.Clone(b)
	for _, v := range m.values {
		out = bytes.ReplaceAll(out, v, []byte("***"))
	}
	return out
}

// flushMask flushes w when it is a maskWriter.
func flushMask(w io.Writer) {
	if m, ok := w.(*maskWriter); ok {
		m.Flush()
	}
}
