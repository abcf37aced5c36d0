package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// writeIDMaps gives the child's user namespace its id maps. Root writes
// /proc/PID/{uid,gid}_map directly; anyone else goes through the setuid
// helpers newuidmap and newgidmap, which check /etc/subuid and /etc/subgid.
func writeIDMaps(pid int, uidMap, gidMap []IDMap) error {
	if os.Geteuid() == 0 {
		if err := writeMapFile(pid, "uid_map", uidMap); err != nil {
			return err
		}
		return writeMapFile(pid, "gid_map", gidMap)
	}
	if err := runMapHelper("newuidmap", pid, uidMap); err != nil {
		return err
	}
	return runMapHelper("newgidmap", pid, gidMap)
}

func writeMapFile(pid int, name string, m []IDMap) error {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	p := fmt.Sprintf("/proc/%d/%s", pid, name)
	if err := os.WriteFile(p, []byte(b.String()), 0); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func runMapHelper(helper string, pid int, m []IDMap) error {
	args := []string{strconv.Itoa(pid)}
	for _, e := range m {
		args = append(args, strconv.FormatUint(uint64(e.ContainerID), 10), strconv.FormatUint(uint64(e.HostID), 10), strconv.FormatUint(uint64(e.Size), 10))
	}
	out, err := exec.Command(helper, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s (is the uidmap package installed, and are /etc/subuid and /etc/subgid set up?)", helper, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
