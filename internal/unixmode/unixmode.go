// Package unixmode turns Go's portable file modes into the mode bits of
// stat(2), chmod(2) and tar headers.
package unixmode

import "io/fs"

// Bits returns the permission, set-user-id, set-group-id and sticky bits
// of m as chmod(2) takes them (0o4755 for a set-user-id 0o755); the file
// type is left out.
func Bits(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// FileMode is the inverse of Bits: chmod(2)'s permission, set-id and
// sticky bits as an fs.FileMode.
func FileMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
