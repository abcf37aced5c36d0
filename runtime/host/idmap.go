package host

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/strata-build/strata/runtime/sandbox"
)

// SubIDCount is how many subordinate ids a rootless build maps: enough for
// every id a Debian or Alpine package creates.
const SubIDCount = 65536

// subIDRange is one line of /etc/subuid or /etc/subgid.
type subIDRange struct {
	Owner       string // user name or numeric id
	Start, Size uint32
}

// End is the first id after the range.
func (r subIDRange) End() uint64 { return uint64(r.Start) + uint64(r.Size) }

// readSubIDs parses a subordinate id file; a missing file has no ranges.
func readSubIDs(path string) ([]subIDRange, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []subIDRange
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		parts := strings.Split(text, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: want NAME:START:COUNT, got %q", path, line, text)
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		size, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad numbers in %q", path, line, text)
		}
		out = append(out, subIDRange{Owner: parts[0], Start: uint32(start), Size: uint32(size)})
	}
	return out, sc.Err()
}

// rangeFor returns the first range of u with at least SubIDCount ids.
func rangeFor(ranges []subIDRange, u *user.User) (subIDRange, bool) {
	for _, r := range ranges {
		if (r.Owner == u.Username || r.Owner == u.Uid) && r.Size >= SubIDCount {
			return r, true
		}
	}
	return subIDRange{}, false
}

// ErrNoSubIDs means the user has no usable subordinate id range.
var ErrNoSubIDs = errors.New("no subordinate ids")

// IDMaps returns the uid and gid maps of a rootless build for the current
// user: the user becomes root in the build, and container id N (1..65535)
// is host id START+N of the user's subordinate range, so that a file a step
// chowned to 1234 reads as START+1234 on the host.
func IDMaps() (uids, gids []sandbox.IDMap, err error) {
	u, err := user.Current()
	if err != nil {
		return nil, nil, err
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	uids, err = idMap("/etc/subuid", u, uid)
	if err != nil {
		return nil, nil, err
	}
	gids, err = idMap("/etc/subgid", u, gid)
	if err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// IDMapsIfRootless returns the id maps of a rootless build, or nils when
// strata runs as root and needs no user namespace.
func IDMapsIfRootless() (uids, gids []sandbox.IDMap, err error) {
	if os.Geteuid() == 0 {
		return nil, nil, nil
	}
	return IDMaps()
}

func idMap(path string, u *user.User, own uint32) ([]sandbox.IDMap, error) {
	ranges, err := readSubIDs(path)
	if err != nil {
		return nil, err
	}
	r, ok := rangeFor(ranges, u)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no range of %d ids for %s; run as root: strata unpriv-setup --user %s", ErrNoSubIDs, path, SubIDCount, u.Username, u.Username)
	}
	if uint64(own) >= uint64(r.Start) && uint64(own) < r.End() {
		return nil, fmt.Errorf("%s gives %s the range %d-%d, which contains the user's own id %d: the build could not tell the user's files from the container's; give %s a range that does not contain %d (strata unpriv-setup does)", path, u.Username, r.Start, r.End()-1, own, u.Username, own)
	}
	return []sandbox.IDMap{
		{ContainerID: 0, HostID: own, Size: 1},
		{ContainerID: 1, HostID: r.Start + 1, Size: SubIDCount - 1},
	}, nil
}
