package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-build/strata/internal/imagepath"
)

// Run runs spec's steps in a sandbox and, when spec.Finish is set, returns
// the finisher's result. A failing run step is reported as a *StepError
// wrapped with the image name. When ctx is cancelled the whole sandbox is
// killed and Run returns an error wrapping ctx.Err(); nothing stays mounted.
func Run(ctx context.Context, spec Spec) (finishResult json.RawMessage, err error) {
	if err := spec.validate(); err != nil {
		return nil, fmt.Errorf("sandbox %s: invalid spec: %w", spec.Name, err)
	}
	if spec.Finish != nil {
		if _, ok := lookupFinisher(spec.Finish.Name); !ok {
			return nil, fmt.Errorf("sandbox %s: finisher %q is not registered (RegisterFinisher must be called from an init function)", spec.Name, spec.Finish.Name)
		}
	}
	stage, err := newStage(spec.TempDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.Name, err)
	}
	defer removeTree(stage)

	cs, err := prepare(&spec, stage)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.Name, err)
	}
	defer removeMasks(cs)
	if spec.Interactive {
		cs.Background = inBackground(spec.Stdin)
		if !cs.Background {
			defer saveTerminals(spec.Stdin, spec.Stdout, spec.Stderr).restore()
		}
	}
	cio := childIO{stdin: spec.Stdin, stdout: spec.Stdout, stderr: spec.Stderr, interactive: spec.Interactive, secrets: spec.Secrets, hold: spec.HoldOpen}
	res, err := startChild(ctx, cs, stage, cio, spec.UIDMap, spec.GIDMap)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", spec.Name, err)
	}
	if res.Step != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Name, res.Step)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("image %s: %s", spec.Name, res.Error)
	}
	return res.Finish, nil
}

// newStage makes the temporary folder holding the spec, the step scripts
// and the skeleton lower dir, in parent (default: os.TempDir()). It is
// world-readable so that a user namespace that does not map the caller's
// uid can still read it; a parent private to the caller (Spec.TempDir, a
// workspace) suits only namespaces that map the caller, as strata's do.
func newStage(parent string) (string, error) {
	dir, err := os.MkdirTemp(parent, "strata-sandbox-")
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

// prepare writes the step scripts and the skeleton lower dir into stage and
// builds the child's spec.
func prepare(spec *Spec, stage string) (_ *childSpec, err error) {
	cs := &childSpec{
		Mode:        modeRun,
		Name:        spec.Name,
		Upper:       spec.Upper,
		Work:        spec.Work,
		Rootfs:      spec.Rootfs,
		StepsDir:    filepath.Join(stage, "steps"),
		Env:         spec.Env,
		WorkDir:     spec.WorkDir,
		Binds:       spec.Binds,
		Rootless:    spec.rootless(),
		TTYGroup:    !spec.rootless() || mapsID(spec.GIDMap, 5),
		Interactive: spec.Interactive,
		User:        spec.User,
		Finish:      spec.Finish,
		Secrets:     len(spec.Secrets),
	}
	if cs.WorkDir == "" {
		cs.WorkDir = "/"
	}
	if cs.Env == nil {
		cs.Env = []string{}
	}
	if err := os.Mkdir(cs.StepsDir, 0o755); err != nil {
		return nil, err
	}
	for i, st := range spec.Steps {
		c := childStep{Copy: st.Copy, Argv: st.Argv, Where: st.Where}
		if st.Script != "" {
			name := "step-" + strconv.Itoa(i+1)
			c.Script = "/.strata/" + name
			c.Shebang = strings.HasPrefix(st.Script, "#!")
			mode := fs.FileMode(0o644)
			if c.Shebang {
				mode = 0o755
			}
			if err := os.WriteFile(filepath.Join(cs.StepsDir, name), []byte(st.Script), mode); err != nil {
				return nil, err
			}
			// WriteFile's mode is subject to the umask.
			if err := os.Chmod(filepath.Join(cs.StepsDir, name), mode); err != nil {
				return nil, err
			}
		}
		cs.Steps = append(cs.Steps, c)
	}
	if err := prepareImports(cs, spec.Steps); err != nil {
		return nil, fmt.Errorf("imports: %w", err) // it removed its masks
	}
	// The import masks live outside the stage (see importMask): a failure
	// from here on must remove them, as Run does after a success.
	defer func() {
		if err != nil {
			removeMasks(cs)
		}
	}()
	skel := filepath.Join(stage, "skel")
	if err := writeSkeleton(skel, spec.Binds, len(spec.Secrets) > 0); err != nil {
		return nil, fmt.Errorf("skeleton: %w", err)
	}
	cs.Lowers = append(append([]string{}, spec.Lowers...), skel)
	return cs, nil
}

// writeSkeleton creates the bottom-most lower dir that supplies every mount
// point the image may lack, so that mount points never land in the upper dir.
func writeSkeleton(skel string, binds []Bind, secrets bool) error {
	dirs := []string{"proc", "sys", "dev", ".strata", "etc"}
	if secrets {
		dirs = append(dirs, strings.TrimPrefix(imagepath.Secrets, "/"))
	}
	files := []string{"etc/resolv.conf"}
	for _, b := range binds {
		fi, err := os.Stat(b.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
		rel := strings.TrimPrefix(containerPath(b.Dest), "/")
		if fi.IsDir() {
			dirs = append(dirs, rel)
		} else {
			dirs = append(dirs, filepath.Dir(rel))
			files = append(files, rel)
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(skel, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(skel, f)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			continue
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// mapsID reports whether container id is mapped by m.
func mapsID(m []IDMap, id uint32) bool {
	for _, e := range m {
		if id >= e.ContainerID && id-e.ContainerID < e.Size {
			return true
		}
	}
	return false
}

// childIO are the standard streams of the child.
type childIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	interactive    bool
	// secrets are written to the child on fdSecrets.
	secrets []Secret
	// hold follow the other descriptors; see Spec.HoldOpen.
	hold []*os.File
}

// Descriptors the child inherits, after stdin, stdout and stderr.
const (
	fdSpec   = 3 // the JSON childSpec, a regular file read with pread
	fdSync   = 4 // read end of a pipe: one byte once the id maps are written; EOF when the parent dies
	fdResult = 5 // write end of a pipe: the JSON childResult
	// fdSecrets is the read end of a pipe carrying the secrets (when
	// childSpec.Secrets > 0), so that their values never touch a disk.
	fdSecrets = 6
)

// startChild re-executes this binary in new namespaces, writes its id maps,
// waits for it and returns what it reported.
func startChild(ctx context.Context, cs *childSpec, stage string, cio childIO, uidMap, gidMap []IDMap) (*childResult, error) {
	// In a chroot the child would fail to start with a bare "operation
	// not permitted": say why instead, for every kind of child.
	if err := DetectChroot(); err != nil {
		return nil, err
	}
	specPath := filepath.Join(stage, "spec.json")
	data, err := json.Marshal(cs)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(specPath, data, 0o644); err != nil {
		return nil, err
	}
	specFile, err := os.Open(specPath)
	if err != nil {
		return nil, err
	}
	defer specFile.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer syncR.Close()
	defer syncW.Close()
	resR, resW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer resR.Close()
	defer resW.Close()

	extra := []*os.File{specFile, syncR, resW}
	var secW *os.File
	if cs.Secrets > 0 {
		secR, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer secR.Close()
		defer w.Close()
		extra, secW = append(extra, secR), w
	}
	extra = append(extra, cio.hold...)

	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	stageEnv := stageFirst
	if cs.Rootless {
		flags |= unix.CLONE_NEWUSER
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"strata-sandbox: " + cs.Name},
		Env:        []string{envKey + "=" + stageEnv},
		ExtraFiles: extra,
		Stdout:     cio.stdout,
		Stderr:     cio.stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			// The sandbox dies with its parent even on SIGKILL. Pdeathsig
			// is tied to the thread that started the child, hence the
			// LockOSThread below.
			Pdeathsig: syscall.SIGKILL,
		},
		// A step cannot keep our output pipes open past the child's
		// death (the pid namespace dies with it), but do not hang if it
		// somehow does.
		WaitDelay: 5 * time.Second,
	}
	if cio.interactive {
		cmd.Stdin = cio.stdin
	}
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	specFile.Close()
	syncR.Close()
	resW.Close()
	if secW != nil {
		extra[fdSecrets-3].Close()
		// In the background: the pipe holds 64 KiB, and the child reads
		// only once its id maps are written.
		go func() {
			writeSecrets(secW, cio.secrets)
			secW.Close()
		}()
	}

	result := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(resR)
		result <- b
	}()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			// SIGKILL to the pid namespace's init kills every process in it.
			cmd.Process.Kill()
		case <-done:
		}
	}()

	if cs.Rootless {
		if err := writeIDMaps(cmd.Process.Pid, uidMap, gidMap); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, err
		}
		if _, err := syncW.Write([]byte{1}); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("release sandbox: %w", err)
		}
	}
	waitErr := cmd.Wait()
	raw := <-result
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	var res childResult
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, fmt.Errorf("sandbox result: %w", err)
		}
	}
	if !res.Done {
		if waitErr == nil {
			waitErr = errors.New("exited without reporting")
		}
		return nil, fmt.Errorf("sandbox process died: %w", waitErr)
	}
	return &res, nil
}

// removeTree removes a folder the sandbox wrote, making unreadable
// directories (overlay's workdir/work is mode 000) writable first so that an
// unprivileged caller can remove what it owns.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
