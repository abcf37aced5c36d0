// Package bytesize is how strata prints a size, in every message: binary
// units, one decimal (512 B, 1.5 KiB, 12.3 MiB).
package bytesize

import "fmt"

// Format formats a byte count for people.
func Format(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / 1024
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		// From 1023.95 on, %.1f would print 1024.0: the next unit's 1.0.
		if v < 1023.95 {
			return fmt.Sprintf("%.1f %s", v, unit)
		}
		v /= 1024
	}
	return fmt.Sprintf("%.1f EiB", v)
}
