package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// lookPath finds a command in the PATH of the step's environment, inside
// the container (the process runs after pivot_root). exec.LookPath would
// use strata's own PATH, which means nothing in the image.
func lookPath(root *inRoot, name string, env []string, workDir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(workDir, p)
		}
		if _, err := root.stat(p); err != nil {
			return "", fmt.Errorf("%s: not in the image", name)
		}
		return name, nil
	}
	path := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(workDir, dir) // where the step runs
		}
		p := filepath.Join(dir, name)
		if st, err := root.stat(p); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the image's PATH (%s)", name, path)
}

// resolveUser turns an image config's "user[:group]" into credentials,
// reading the image's own /etc/passwd and /etc/group: names mean what the
// image says, never what the host says. A user without a group gets its
// primary group from /etc/passwd and its supplementary groups from
// /etc/group.
func resolveUser(root *inRoot, spec string) (*syscall.Credential, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	cred := &syscall.Credential{}
	uid, err := strconv.ParseUint(userPart, 10, 32)
	name := ""
	primary := uint64(0)
	if err == nil {
		cred.Uid = uint32(uid)
		if e, ok := findEntry(root, "/etc/passwd", 4, func(f []string) bool { return f[2] == userPart }); ok {
			name = e[0]
			primary, _ = strconv.ParseUint(e[3], 10, 32)
		}
	} else {
		e, ok := findEntry(root, "/etc/passwd", 4, func(f []string) bool { return f[0] == userPart })
		if !ok {
			return nil, fmt.Errorf("no user %s in the image's /etc/passwd", userPart)
		}
		u, err1 := strconv.ParseUint(e[2], 10, 32)
		g, err2 := strconv.ParseUint(e[3], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad /etc/passwd entry for %s", userPart)
		}
		cred.Uid, name, primary = uint32(u), userPart, g
	}
	cred.Gid = uint32(primary)
	if hasGroup {
		if g, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			cred.Gid = uint32(g)
		} else {
			e, ok := findEntry(root, "/etc/group", 3, func(f []string) bool { return f[0] == groupPart })
			if !ok {
				return nil, fmt.Errorf("no group %s in the image's /etc/group", groupPart)
			}
			g, err := strconv.ParseUint(e[2], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad /etc/group entry for %s", groupPart)
			}
			cred.Gid = uint32(g)
		}
		return cred, nil
	}
	if name != "" {
		cred.Groups = supplementaryGroups(root, name)
	}
	return cred, nil
}

// findEntry returns the fields of the first line of an /etc/passwd-like
// file that has at least minFields fields and matches; shorter (broken)
// lines are skipped.
func findEntry(root *inRoot, path string, minFields int, match func([]string) bool) ([]string, bool) {
	f, err := openTable(root, path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= minFields && match(fields) {
			return fields, true
		}
	}
	return nil, false
}

func supplementaryGroups(root *inRoot, name string) []uint32 {
	f, err := openTable(root, "/etc/group")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 {
			continue
		}
		for _, m := range strings.Split(fields[3], ",") {
			if m == name {
				if g, err := strconv.ParseUint(fields[2], 10, 32); err == nil {
					out = append(out, uint32(g))
				}
			}
		}
	}
	return out
}

// openTable opens an /etc/passwd-like file of the image, which must be a
// regular file: a fifo there would block the sandbox forever.
func openTable(root *inRoot, p string) (*os.File, error) {
	f, err := root.openFile(p, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	return f, nil
}
