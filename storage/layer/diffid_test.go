package layer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/strata-build/strata/internal/layertype"
)

func TestUnpackChecksDiffID(t *testing.T) {
	ctx := context.Background()
	upper := t.TempDir()
	if err := os.WriteFile(filepath.Join(upper, "f"), []byte("content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []layertype.Type{layertype.TarGzip, layertype.TarZstd} {
		blob := filepath.Join(t.TempDir(), "blob")
		res, err := Write(ctx, upper, typ, blob, WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := Unpack(ctx, blob, res.MediaType, t.TempDir(), UnpackOptions{Digest: res.Digest, DiffID: res.DiffID}); err != nil {
			t.Errorf("%s: the right diff ID was refused: %v", typ, err)
		}
		err = Unpack(ctx, blob, res.MediaType, t.TempDir(), UnpackOptions{DiffID: digest.FromString("another layer")})
		if err == nil || !strings.Contains(err.Error(), "diff ID") {
			t.Errorf("%s: a wrong diff ID gave %v", typ, err)
		}
	}
}
