package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/storage"
	"github.com/strata-build/strata/storage/registry"
)

func TestLoadBaseOncePerKeyAndInParallel(t *testing.T) {
	var c baseCache
	ctx := context.Background()
	var loads atomic.Int32
	started := make(chan string, 2)
	release := make(chan struct{})
	load := func(key string) func() (*storage.BaseImage, error) {
		return func() (*storage.BaseImage, error) {
			loads.Add(1)
			started <- key
			<-release
			return &storage.BaseImage{}, nil
		}
	}
	var wg sync.WaitGroup
	imgs := make([]*storage.BaseImage, 4)
	for i, key := range []string{"a", "a", "b", "a"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := c.load(ctx, key, load(key))
			if err != nil {
				t.Error(err)
			}
			imgs[i] = img
		}()
	}
	// Both keys start loading before either finishes: one does not wait
	// for the other.
	got := map[string]bool{<-started: true, <-started: true}
	if !got["a"] || !got["b"] {
		t.Errorf("loads started for %v, want a and b at once", got)
	}
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 2 {
		t.Errorf("%d loads, want one per key", n)
	}
	if imgs[0] != imgs[1] || imgs[0] != imgs[3] || imgs[0] == imgs[2] {
		t.Error("callers of one key got different images")
	}
}

func TestLoadBaseWaiterCancelled(t *testing.T) {
	var c baseCache
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go c.load(context.Background(), "k", func() (*storage.BaseImage, error) {
		close(started)
		<-release
		return nil, nil
	})
	<-started
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errFailFast)
	if _, err := c.load(ctx, "k", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("a waiter stopped by --fail-fast got %v, want context.Canceled (counted as skipped)", err)
	}
}

func TestInsecurePullIsForItsRegistryOnly(t *testing.T) {
	b := dsl.Pull("docker://registry.internal:5000/team/base:1", dsl.Insecure()).(*dsl.PullBase)
	o := pullOptions(registry.Options{}, b)
	if o.Registry.Insecure || !o.Registry.InsecureFor("registry.internal:5000") || o.Registry.InsecureFor("auth.example") {
		t.Errorf("dsl.Insecure() gave %+v", o.Registry)
	}
	if o := pullOptions(registry.Options{}, dsl.Pull("docker://registry.internal:5000/b:1").(*dsl.PullBase)); o.Registry.InsecureFor("registry.internal:5000") {
		t.Error("a pull without dsl.Insecure() is insecure")
	}
}
