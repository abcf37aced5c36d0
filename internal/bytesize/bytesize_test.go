package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{
		0:          "0 B",
		512:        "512 B",
		1536:       "1.5 KiB",
		12_900_000: "12.3 MiB",
		1<<20 - 1:  "1.0 MiB",
		3 << 30:    "3.0 GiB",
	} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
