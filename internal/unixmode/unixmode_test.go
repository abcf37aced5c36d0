package unixmode

import (
	"io/fs"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBits(t *testing.T) {
	for _, c := range []struct {
		m    fs.FileMode
		want uint32
	}{
		{0, 0},
		{0o644, 0o644},
		{fs.ModeDir | 0o755, 0o755},
		{fs.ModeSymlink | 0o777, 0o777},
		{fs.ModeSetuid | 0o755, unix.S_ISUID | 0o755},
		{fs.ModeSetgid | 0o2755, unix.S_ISGID | 0o755},
		{fs.ModeDir | fs.ModeSticky | 0o777, unix.S_ISVTX | 0o777},
		{fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o700, 0o7700},
	} {
		if got := Bits(c.m); got != c.want {
			t.Errorf("Bits(%v) = %o, want %o", c.m, got, c.want)
		}
	}
}

func TestFileModeInvertsBits(t *testing.T) {
	for _, u := range []uint32{0, 0o644, 0o755, 0o4755, 0o2711, 0o1777, 0o7777} {
		if got := Bits(FileMode(u)); got != u {
			t.Errorf("Bits(FileMode(%#o)) = %#o", u, got)
		}
	}
}
