package buildkit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-build/strata/runtime"
)

// Every address form the README names reaches BuildKit's client through
// runtime.OpenBackend, and one nothing answers at fails with the address
// and why, without waiting long.
func TestOpenAddressForms(t *testing.T) {
	for _, addr := range []string{
		"unix://" + filepath.Join(t.TempDir(), "none.sock"),
		"buildkit://127.0.0.1:1",
		"tcp://127.0.0.1:1",
		"docker-container://strata-test-none",
		"kube-pod://strata-test-none",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		b, err := runtime.OpenBackend(ctx, addr)
		cancel()
		if err == nil {
			b.Close()
			t.Errorf("%s: opened", addr)
			continue
		}
		t.Logf("%s: %v (%s)", addr, err, time.Since(start).Round(time.Millisecond))
		if !strings.Contains(err.Error(), "--backend "+addr+": ") || strings.Contains(err.Error(), "scheme") {
			t.Errorf("%s: %v", addr, err)
		}
	}
}
