package runtime

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/bytesize"
)

// nearlyFull is the free space under which a filesystem counts as full
// after a step failed: a write that got ENOSPC leaves a few blocks free on
// some filesystems (ext4 keeps some for metadata it may still need).
const nearlyFull = 4 << 20

// diskFull says why a step that failed may have failed for want of space,
// as a clause to add to its failure, or "". A step that fills the disk
// mostly ends with a bare "exit status 1" (its "No space left on device"
// scrolled away or went to a log), so the store's filesystem, which holds
// the step's rootfs, is looked at after the failure, before the
// workspace is discarded. When that one has room but the step's last
// lines say ENOSPC, the space ran out elsewhere (a bind or a cache mount).
func diskFull(store string, tail []string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(store, &st); err != nil {
		return ""
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	switch {
	case free < nearlyFull:
		return fmt.Sprintf("no space left on device: the store's filesystem (%s) is full (%s free)", store, bytesize.Format(free))
	case st.Files > 0 && st.Ffree == 0:
		return fmt.Sprintf("no space left on device: the store's filesystem (%s) has no free inodes", store)
	}
	for _, l := range tail {
		if strings.Contains(l, "No space left on device") {
			return fmt.Sprintf("no space left on device, but not on the store's filesystem (%s, %s free): see the step's last lines", store, bytesize.Format(free))
		}
	}
	return ""
}
