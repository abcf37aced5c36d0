package runtime

import (
	"strings"
	"testing"
)

// TestDiskFullElsewhere: a store with room adds nothing to a failure,
// unless the step itself said it ran out of space: then the failure says
// that the store is not where it did.
func TestDiskFullElsewhere(t *testing.T) {
	store := t.TempDir()
	if got := diskFull(store, []string{"+ false"}); got != "" {
		t.Errorf("a failure with room in the store: %q", got)
	}
	got := diskFull(store, []string{"cp: error writing '/cache/x': No space left on device"})
	if !strings.HasPrefix(got, "no space left on device, but not on the store's filesystem ("+store+", ") {
		t.Errorf("ENOSPC in the step's output with room in the store: %q", got)
	}
}
