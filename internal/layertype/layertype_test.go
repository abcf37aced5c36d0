package layertype

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Type{
		"tar": TarGzip, "tar+gzip": TarGzip, "gzip": TarGzip, " TAR+GZIP ": TarGzip,
		"tar+zstd": TarZstd, "zstd": TarZstd, "squashfs": Squashfs, "tar+uncompressed": TarUncompressed,
	} {
		if got, err := Parse(in); err != nil || got != want || !got.Known() {
			t.Errorf("Parse(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := Parse("cpio"); err == nil || !strings.Contains(err.Error(), "tar+zstd") {
		t.Errorf("bad error for unknown type: %v", err)
	}
}

// The JSON form is the canonical name, so records written before the type
// had a decoder read back byte for byte; aliases are the user's, not a
// serialized form's.
func TestJSON(t *testing.T) {
	for _, want := range []Type{TarGzip, TarZstd, Squashfs, TarUncompressed} {
		b, err := json.Marshal(want)
		if err != nil || string(b) != `"`+string(want)+`"` {
			t.Errorf("Marshal(%q) = %s, %v", want, b, err)
		}
		var got Type
		if err := json.Unmarshal(b, &got); err != nil || got != want {
			t.Errorf("Unmarshal(%s) = %q, %v", b, got, err)
		}
	}
	for _, in := range []string{`"tar"`, `"zstd"`, `"TAR+GZIP"`, `""`, `"cpio"`} {
		var got Type
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %q, want an error", in, got)
		}
	}
}

func TestKnown(t *testing.T) {
	for _, bad := range []Type{"", "tar", "zstd", "cpio"} {
		if bad.Known() || bad.Tar() {
			t.Errorf("%q is known", bad)
		}
	}
	if Squashfs.Tar() || !TarZstd.Tar() || !TarUncompressed.Tar() {
		t.Error("Tar is wrong")
	}
}
