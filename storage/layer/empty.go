package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Unchanged reports whether upperDir, an overlay upper dir, holds no
// change: Write gives Result.Empty for it, and the image has no layer.
func Unchanged(upperDir string) (bool, error) {
	f, err := os.Open(upperDir)
	if err != nil {
		return false, fmt.Errorf("open upper dir: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read upper dir %s: %w", upperDir, err)
	}
	return len(names) == 0, nil
}
