package flight

import (
	"sync"
	"testing"
	"testing/synctest"
)

// TestRanSaysWhoseWorkItWas holds the first caller's work until every
// other caller is waiting for it: they get its outcome with ran false,
// and only the first gets ran true.
func TestRanSaysWhoseWorkItWas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group[int]
		release := make(chan struct{})
		type got struct {
			v   int
			ran bool
		}
		results := make([]got, 4)
		var wg sync.WaitGroup
		call := func(i int) {
			defer wg.Done()
			v, ran, _ := g.Do("k", func() (int, error) {
				<-release
				return i, nil
			})
			results[i] = got{v, ran}
		}
		wg.Add(1)
		go call(0)
		synctest.Wait() // the first caller's work is running
		for i := 1; i < len(results); i++ {
			wg.Add(1)
			go call(i)
		}
		synctest.Wait() // the others wait for it
		close(release)
		wg.Wait()
		for i, r := range results {
			if want := (got{0, i == 0}); r != want {
				t.Errorf("caller %d got %+v, want %+v", i, r, want)
			}
		}
		if _, ran, _ := g.Do("k", func() (int, error) { return 9, nil }); !ran {
			t.Error("a call after the work was over waited for it")
		}
	})
}
