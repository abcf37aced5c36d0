package buildkit

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/runtime"
)

// Chunks of stdout and stderr that end mid-line reach the log as whole
// lines of each stream, in the order their lines ended.
func TestProgressKeepsStreamsApart(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&runtime.Job{Out: &out}, &graph{steps: map[string]int{}})
	ch := make(chan *client.SolveStatus, 8)
	log := func(fd int, s string) *client.SolveStatus {
		return &client.SolveStatus{Logs: []*client.VertexLog{{Vertex: "sha256:v", Stream: fd, Data: []byte(s)}}}
	}
	ch <- log(2, "+ echo first step ran")
	ch <- log(1, "first step ran\n")
	ch <- log(2, "\n+ echo a")
	ch <- log(1, "a\nb")
	ch <- log(2, "nd b\n")
	close(ch)
	p.follow(ch)
	want := "first step ran\n+ echo first step ran\na\n+ echo and b\nb\n"
	if out.String() != want {
		t.Errorf("log:\n%q\nwant\n%q", out.String(), want)
	}
}

// A failed vertex that stands for a step becomes that step's failure,
// with the exit code BuildKit reports.
func TestProgressNamesTheFailedStep(t *testing.T) {
	g := &graph{steps: map[string]int{"img: step 2/2 (images.go:9)": 1}}
	p := newProgress(&runtime.Job{Steps: make([]dsl.Step, 2)}, g)
	p.vertex(&client.Vertex{Digest: "sha256:a", Name: "img: step 2/2 (images.go:9)", Error: "exit code: 3"})
	err := p.failure(&gatewaypb.ExitError{ExitCode: 3, Err: errors.New("process did not complete successfully: exit code: 3")})
	var sf *runtime.StepFailed
	if !errors.As(err, &sf) || sf.Index != 1 || sf.ExitCode != 3 {
		t.Errorf("failure = %#v", err)
	}
	// Another vertex's error stays BuildKit's.
	p = newProgress(&runtime.Job{}, &graph{steps: map[string]int{}})
	p.vertex(&client.Vertex{Digest: "sha256:b", Name: "exporting to oci image format", Error: "no space"})
	if err := p.failure(errors.New("no space")); errors.As(err, &sf) {
		t.Errorf("an export error became a step's: %v", err)
	}
}

// A parent's step that comes from the daemon's cache is fine; one that
// ran again means the parent was made anew.
func TestProgressSeesAParentRunAgain(t *testing.T) {
	now := time.Now()
	g := &graph{steps: map[string]int{}, inherited: map[string]bool{"base: step 1/1 (images.go:3)": true}}
	p := newProgress(&runtime.Job{}, g)
	p.vertex(&client.Vertex{Digest: "sha256:a", Name: "base: step 1/1 (images.go:3)", Started: &now, Completed: &now, Cached: true})
	if p.inheritedRan() {
		t.Error("a cached parent step counts as run")
	}
	p.vertex(&client.Vertex{Digest: "sha256:a", Name: "base: step 1/1 (images.go:3)", Started: &now, Completed: &now})
	if !p.inheritedRan() {
		t.Error("a parent step that ran again went unseen")
	}
}
