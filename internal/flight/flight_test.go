package flight

import (
	"sync"
	"testing"
)

// TestRanSaysWhoseWorkItWas holds the first caller's work until the
// others have called, so that they wait for it (or, should one arrive
// late, run their own): either way ran must say whether the outcome a
// caller got is its own.
func TestRanSaysWhoseWorkItWas(t *testing.T) {
	var g Group[int]
	started := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	type got struct {
		v   int
		ran bool
	}
	results := make([]got, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, ran, _ := g.Do("k", func() (int, error) {
				if i == 0 {
					close(started)
					<-release
				}
				return i, nil
			})
			results[i] = got{v, ran}
		}()
		if i == 0 {
			<-started
		}
	}
	close(release)
	wg.Wait()
	if !results[0].ran || results[0].v != 0 {
		t.Errorf("the first caller got %+v, want its own work", results[0])
	}
	for i, r := range results {
		if r.ran != (r.v == i) {
			t.Errorf("caller %d got %+v: ran must say whether the value is its own", i, r)
		}
	}
	if _, ran, _ := g.Do("k", func() (int, error) { return 9, nil }); !ran {
		t.Error("a call after the work was over waited for it")
	}
}
