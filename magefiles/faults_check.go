//go:build mage

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// leftovers lists the mounts and processes a build left behind: mounts
// whose line in /proc/self/mountinfo names the fault target's work folder
// (the tmpfs it mounts itself excepted), and processes that descend from
// this one (it is a child subreaper, so a killed strata's orphans come
// here), run bin/strata, or have their root, working folder or command
// line in the work folder. A process that is exiting may take a moment:
// leftovers waits up to grace for the lists to empty.
//
// Call it only while no strata started by the target is running: it
// reaps every exited child.
func (f *faultRun) leftovers(grace time.Duration) (mounts, procs []string) {
	deadline := time.Now().Add(grace)
	for {
		reapOrphans()
		mounts, procs = f.leftoverMounts(), f.leftoverProcesses()
		if len(mounts)+len(procs) == 0 || time.Now().After(deadline) {
			return mounts, procs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reapOrphans collects the exit status of orphans reparented here, which
// would otherwise stay zombies and look like leftovers.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func (f *faultRun) leftoverMounts() []string {
	file, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"read /proc/self/mountinfo: " + err.Error()}
	}
	defer file.Close()
	var out []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, f.work) {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 5 || f.ownMounts[fields[4]] {
			continue
		}
		fstype := ""
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) {
				fstype = fields[i+1]
			}
		}
		out = append(out, fmt.Sprintf("%s (%s)", fields[4], fstype))
	}
	return out
}

func (f *faultRun) leftoverProcesses() []string {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []string{"read /proc: " + err.Error()}
	}
	parent := map[int]int{}
	state := map[int]byte{}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parent[pid], state[pid] = ppid, fields[0][0]
		pids = append(pids, pid)
	}
	descends := func(pid int) bool {
		for n := 0; pid > 1 && n < 4096; n++ {
			pid = parent[pid]
			if pid == self {
				return true
			}
		}
		return false
	}
	var out []string
	for _, pid := range pids {
		if state[pid] == 'Z' {
			continue // exited; its parent has not reaped it yet
		}
		var why []string
		if descends(pid) {
			why = append(why, "descends from the fault target")
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); strings.TrimSuffix(exe, " (deleted)") == f.strata {
			why = append(why, "runs "+f.strata)
		}
		for _, l := range []string{"root", "cwd"} {
			if p, _ := os.Readlink(fmt.Sprintf("/proc/%d/%s", pid, l)); within(p, f.work) {
				why = append(why, l+" "+p)
			}
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if strings.Contains(cmd, f.work) {
			why = append(why, "command line names the work folder")
		}
		if len(why) > 0 {
			out = append(out, fmt.Sprintf("pid %d [%c] %q: %s", pid, state[pid], cmd, strings.Join(why, ", ")))
		}
	}
	return out
}

func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// layoutCheck is what verifying an OCI layout found.
type layoutCheck struct {
	missing  int      // blobs referenced but absent
	corrupt  int      // blobs (or index.json) whose content is not what their name or reference says
	stray    []string // files in blobs/ that are not named by a digest (temporary files left)
	problems []string // one line per missing or corrupt blob
}

func (c *layoutCheck) add(o layoutCheck) {
	c.missing += o.missing
	c.corrupt += o.corrupt
	c.stray = append(c.stray, o.stray...)
	c.problems = append(c.problems, o.problems...)
}

// verifyLayout walks the OCI layout at dir from index.json through every
// index and manifest to configs and layers, checking that each blob is
// present with the size and sha256 its descriptor gives; then it hashes
// every other file under blobs/sha256, since a half-written blob under
// its final name would be trusted by the next build as if complete. A
// layout that does not exist yet is fine (a build killed before writing
// one).
func (f *faultRun) verifyLayout(dir string) layoutCheck {
	var c layoutCheck
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return c
	}
	fail := func(missing bool, format string, args ...any) {
		if missing {
			c.missing++
		} else {
			c.corrupt++
		}
		c.problems = append(c.problems, dir+": "+fmt.Sprintf(format, args...))
	}
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		fail(errors.Is(err, fs.ErrNotExist), "index.json: %v", err)
		return c
	}
	var index v1.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		fail(false, "index.json: %v", err)
		return c
	}
	checked := map[string]bool{}
	// walk checks one descriptor's blob and, for an index or a manifest,
	// everything it references.
	var walk func(d v1.Descriptor, what string)
	walk = func(d v1.Descriptor, what string) {
		alg, hexDigest, ok := strings.Cut(d.Digest.String(), ":")
		if !ok || alg != "sha256" || len(hexDigest) != 64 {
			fail(false, "%s: digest %q is not a sha256 digest", what, d.Digest)
			return
		}
		path := filepath.Join(dir, "blobs", alg, hexDigest)
		fi, err := os.Stat(path)
		if err != nil {
			fail(errors.Is(err, fs.ErrNotExist), "%s %s: %v", what, d.Digest, err)
			return
		}
		if fi.Size() != d.Size {
			fail(false, "%s %s: %d bytes, descriptor says %d", what, d.Digest, fi.Size(), d.Size)
		}
		got, err := f.hashFile(path, fi)
		if err != nil {
			fail(false, "%s %s: %v", what, d.Digest, err)
			return
		}
		checked[hexDigest] = true
		if got != hexDigest {
			fail(false, "%s %s: content has sha256:%s", what, d.Digest, got)
			return
		}
		switch d.MediaType {
		case v1.MediaTypeImageIndex:
			var sub v1.Index
			if err := readJSON(path, &sub); err != nil {
				fail(false, "%s %s: %v", what, d.Digest, err)
				return
			}
			for _, m := range sub.Manifests {
				walk(m, what+" > manifest")
			}
		case v1.MediaTypeImageManifest:
			var m v1.Manifest
			if err := readJSON(path, &m); err != nil {
				fail(false, "%s %s: %v", what, d.Digest, err)
				return
			}
			walk(m.Config, what+" > config")
			for i, l := range m.Layers {
				walk(l, fmt.Sprintf("%s > layer %d", what, i))
			}
		}
	}
	for _, m := range index.Manifests {
		walk(m, "tag "+m.Annotations[v1.AnnotationRefName])
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		fail(false, "blobs: %v", err)
	}
	for _, e := range entries {
		name := e.Name()
		if _, err := hex.DecodeString(name); err != nil || len(name) != 64 || !e.Type().IsRegular() {
			c.stray = append(c.stray, filepath.Join(blobs, name))
			continue
		}
		if checked[name] {
			continue
		}
		path := filepath.Join(blobs, name)
		fi, err := os.Stat(path)
		if err != nil {
			continue // collected meanwhile: nothing is running, so not expected, but not corruption
		}
		got, err := f.hashFile(path, fi)
		if err != nil {
			fail(false, "unreferenced blob %s: %v", name, err)
		} else if got != name {
			fail(false, "unreferenced blob %s: content has sha256:%s", name, got)
		}
	}
	return c
}

// hashKey identifies a file's content without reading it: any write
// changes the modification or change time, so a blob that kept all of
// these since it was last hashed still has that digest. Hashing each
// 200 MiB blob once per run, not once per trial, keeps trials short.
type hashKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func (f *faultRun) hashFile(path string, fi os.FileInfo) (string, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	var key hashKey
	if ok {
		key = hashKey{uint64(st.Dev), st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
		if d, ok := f.hashes[key]; ok {
			return d, nil
		}
	}
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", err
	}
	d := hex.EncodeToString(h.Sum(nil))
	if ok {
		f.hashes[key] = d
	}
	return d, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// tags maps each tag of the layout at dir to its manifest digest.
func tags(dir string) (map[string]string, error) {
	var index v1.Index
	if err := readJSON(filepath.Join(dir, "index.json"), &index); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range index.Manifests {
		if name := m.Annotations[v1.AnnotationRefName]; name != "" {
			out[name] = m.Digest.String()
		}
	}
	return out, nil
}

// compareDigests says how the tags of images in layout differ from the
// clean build's; empty when they are the same.
func compareDigests(layout string, images []string, clean map[string]string) []string {
	got, err := tags(layout)
	if err != nil {
		return []string{"read tags: " + err.Error()}
	}
	var diff []string
	for _, img := range images {
		if got[img] != clean[img] {
			diff = append(diff, fmt.Sprintf("%s is %s, the clean build's is %s", img, orNone(got[img]), clean[img]))
		}
	}
	return diff
}

func orNone(s string) string {
	if s == "" {
		return "(not tagged)"
	}
	return s
}
