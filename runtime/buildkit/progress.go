package buildkit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	solvererrdefs "github.com/moby/buildkit/solver/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/timings"
	"github.com/strata-build/strata/runtime"
)

// progress turns BuildKit's status stream into strata's: the steps'
// output into the image's log, the vertex running into the live
// display's state, and a failed vertex into the step it stands for.
type progress struct {
	job   *runtime.Job
	names map[string]int // custom name → step index

	inherited map[string]bool // the custom names of the parents' steps

	mu     sync.Mutex
	ran    bool                  // a parent's step ran, not cached
	steps  map[digest.Digest]int // vertex → step index
	failed digest.Digest         // the vertex that reported an error
	errMsg string
}

func newProgress(job *runtime.Job, g *graph) *progress {
	return &progress{job: job, names: g.steps, inherited: g.inherited, steps: map[digest.Digest]int{}}
}

// follow reads ch until the solve closes it. The steps' stdout and
// stderr come as chunks of each stream, which may end mid-line: each
// stream is cut into lines of its own before they reach the image's log,
// so that a line of one is never spliced into a line of the other.
func (p *progress) follow(ch chan *client.SolveStatus) {
	type stream struct {
		vertex digest.Digest
		fd     int
	}
	partial := map[stream][]byte{}
	var order []stream // first seen first, for what is left at the end
	for st := range ch {
		for _, v := range st.Vertexes {
			p.vertex(v)
		}
		for _, l := range st.Logs {
			if p.job.Out == nil {
				continue
			}
			k := stream{l.Vertex, l.Stream}
			if _, seen := partial[k]; !seen {
				order = append(order, k)
			}
			buf := append(partial[k], l.Data...)
			if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
				p.job.Out.Write(buf[:i+1])
				buf = buf[i+1:]
			}
			partial[k] = append([]byte(nil), buf...)
		}
	}
	for _, k := range order {
		if b := partial[k]; len(b) > 0 {
			p.job.Out.Write(append(b, '\n'))
		}
	}
}

func (p *progress) vertex(v *client.Vertex) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, isStep := p.names[v.Name]
	if !isStep {
		// An import's own vertices ("…: send /src") stand for it too.
		for name, j := range p.names {
			if strings.HasPrefix(v.Name, name+": ") {
				i, isStep = j, true
				break
			}
		}
	}
	if isStep {
		p.steps[v.Digest] = i
	}
	if p.inherited[v.Name] && v.Completed != nil && !v.Cached {
		p.ran = true
	}
	if v.Error != "" && p.failed == "" {
		p.failed, p.errMsg = v.Digest, v.Error
	}
	if timings.Enabled() && v.Started != nil && v.Completed != nil && !v.Cached {
		timings.Record("buildkit: "+v.Name, v.Completed.Sub(*v.Started))
	}
	if p.job.State == nil || v.Started == nil || v.Completed != nil {
		return
	}
	switch {
	case isStep:
		p.job.State(fmt.Sprintf("step %d/%d on buildkit", i+1, len(p.job.Steps)))
	case strings.HasPrefix(v.Name, "[internal]") || strings.HasPrefix(v.Name, "oci-layout://"):
		p.job.State("sending to buildkit")
	}
}

// inheritedRan says whether a step of an image the graph chains from
// ran in this solve rather than coming from the daemon's cache.
func (p *progress) inheritedRan() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ran
}

// failure is the error of a failed solve: a *runtime.StepFailed when a
// step's vertex failed, so that strata reports it as a local step
// failure, with the image, the step and its file:line.
func (p *progress) failure(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	vertex := p.failed
	var ve *solvererrdefs.VertexError
	if errors.As(err, &ve) && ve.Vertex != nil && ve.Digest != "" {
		vertex = digest.Digest(ve.Digest)
	}
	i, ok := p.steps[vertex]
	if !ok {
		return err
	}
	sf := &runtime.StepFailed{Index: i, ExitCode: -1, Message: oneLine(err)}
	var ee *gatewaypb.ExitError
	if errors.As(err, &ee) && ee.ExitCode != gatewaypb.UnknownExitStatus {
		sf.ExitCode = int(ee.ExitCode)
	}
	return sf
}

// oneLine is BuildKit's error without the stack it may carry.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
