package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/strata-build/strata/internal/ignore"
)

// Bind mounts a host path into the container for the duration of the steps.
type Bind struct {
	// Source is a file or folder on the host.
	Source string
	// Dest is the absolute path in the container. A missing mount point is
	// supplied by the skeleton lower dir, so it does not appear in the layer.
	Dest string
	// ReadOnly makes the bind (and everything mounted below Source) read-only.
	ReadOnly bool
}

// Copy imports a host file or folder into the rootfs. The child performs the
// copy itself, as root of the container, so ownership is right in rootless
// mode too.
type Copy struct {
	// Source is a host file or folder. A symlink at Source itself is
	// followed; symlinks inside a folder are copied as symlinks.
	Source string
	// Dest is the absolute path in the container. For a file it is the path
	// of the new file, or the folder to copy into when it ends in "/". For a
	// folder, the folder's contents are merged into Dest, which is created if
	// missing.
	Dest string
	// Mode, when set, is the mode of the copied file, or of Dest itself
	// for a folder, as chmod(2) takes it (permission, set-id and sticky
	// bits, as dsl.ImportStep.Mode); otherwise modes are kept from the
	// source.
	Mode *uint32
	// UID and GID, when set, own everything the copy creates; otherwise
	// 0 (root of the container).
	UID, GID *int
	// Exclude, for a folder, are patterns of entries left out (the syntax
	// of dsl.Exclude). Whatever they say, entries named .git, strata
	// stores and OCI layouts below Source are left out too: the copy walks
	// the folder with ignore.Walk, as dsl hashes it for the cache key.
	Exclude []string
}

// Step is one build step: either a script to run or an import to copy.
type Step struct {
	// Script, for a run step: when it starts with "#!" it is executed as
	// written; otherwise it runs as `sh -xe FILE`, so that each command is
	// echoed on stderr and the first failing command stops the step. The
	// script file is visible in the container at /.strata/step-N (read-only).
	Script string
	// Copy, for an import step.
	Copy *Copy
	// Argv, for a command run directly, without a shell (strata run): the
	// program is looked up in the PATH of Spec.Env when it has no slash.
	// Exactly one of Script, Copy and Argv is set.
	Argv []string
	// Where is the Go source line of the definition, for error messages:
	// "images.go:12", or "images.go:12 → blocks/blocks.go:45" for a step a
	// library function wrote (dsl.Pos.String).
	Where string
}

// IDMap is one line of a user namespace id map.
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// FinishSpec names a registered finisher (see [RegisterFinisher]) and the
// argument it is given after all steps succeeded.
type FinishSpec struct {
	Name string
	Arg  json.RawMessage
}

// Spec describes one sandboxed run.
type Spec struct {
	// Name is the image name: the container's hostname and the prefix of
	// error messages.
	Name string
	// Lowers are the overlay lower dirs, top first. It may be empty for a
	// build from scratch. Up to about 490 are supported.
	Lowers []string
	// Upper and Work are the overlay upperdir and workdir: existing dirs on
	// the same file system, Work empty.
	Upper, Work string
	// Rootfs is an existing empty dir used as the mount point. Nothing is
	// ever mounted on it in the host's mount namespace.
	Rootfs string
	// TempDir is where the sandbox keeps its step scripts and skeleton
	// while it runs (default: os.TempDir()). A folder the caller cleans
	// after a crash (its workspace) leaves nothing behind when the
	// caller is killed.
	TempDir string
	// Env is the complete environment of run steps.
	Env []string
	// WorkDir is the working directory of run steps, "/" when empty. It is
	// created (in the image) when missing, as Dockerfile's WORKDIR does.
	WorkDir string
	// User is "user[:group]", names or numeric ids resolved in the image's
	// /etc/passwd and /etc/group, that Argv steps run as (an image config's
	// User). Build scripts and copies always run as root.
	User string
	// Binds are mounted in order after the container's special file systems.
	Binds []Bind
	// Steps run in order; the first failure stops the run.
	Steps []Step
	// UIDMap and GIDMap, when non-empty, make the run rootless: the child
	// gets a new user namespace with these maps (written with
	// newuidmap/newgidmap when not root) and the overlay is mounted with
	// userxattr. Both must be set together.
	UIDMap, GIDMap []IDMap
	// Stdin is the standard input of the last step when Interactive; run
	// steps otherwise read /dev/null.
	Stdin io.Reader `json:"-"`
	// Stdout and Stderr receive the steps' output live. *os.File ones are
	// passed to the steps as they are, except terminals of an Interactive
	// step (see Interactive).
	Stdout, Stderr io.Writer `json:"-"`
	// Interactive gives the last run step the caller's Stdin (strata run,
	// strata chroot). The step never holds the caller's terminal: when
	// Stdin is one, the step gets a pty of the container's own (on stdin,
	// and on stdout and stderr where those are terminals too), relayed by
	// the sandbox while the caller's terminal is in raw mode, so Ctrl-C is
	// a key for the step; otherwise output that goes to a terminal is
	// relayed through pipes and SIGINT and SIGQUIT the sandbox gets are
	// passed on to the step. The caller should not cancel ctx on SIGINT
	// then: Ctrl-C is meant for the step.
	Interactive bool
	// Finish, when set, runs a registered finisher in the child after all
	// steps succeeded; its result is returned by [Run].
	Finish *FinishSpec
	// Secrets are readable by run steps at /run/secrets/NAME. Their values
	// never touch a disk: they go to the child through a pipe, into a tmpfs
	// that is not part of the upper dir.
	Secrets []Secret `json:"-"`
	// HoldOpen are files the sandbox process keeps open until it ends,
	// even when the caller is killed first: a lock that must be held as
	// long as the container lives. Steps never get them.
	HoldOpen []*os.File `json:"-"`
}

// Secret is one secret file of a sandbox.
type Secret struct {
	// Name is the file name under /run/secrets: not empty, no "/", not
	// "." or "..".
	Name string
	// Value is the file's content. The child gets it through a pipe; it
	// is never written to a disk.
	Value []byte
}

// StepError reports a run step that exited unsuccessfully.
type StepError struct {
	// Index is the 0-based index of the step in Spec.Steps; Error shows it
	// counted from 1.
	Index int
	// Where is the step's definition site.
	Where string
	// ExitCode is the exit status, or -1 when the step was killed by a
	// signal.
	ExitCode int
	// Signal names the signal that killed the step ("SIGSEGV"), if any.
	Signal string
	// Message, when set, says why the step could not start (a command
	// that is not in the image).
	Message string `json:",omitempty"`
}

// Error reads like "step 2 (hello.go:14) failed: exit status 3".
func (e *StepError) Error() string {
	how := fmt.Sprintf("exit status %d", e.ExitCode)
	if e.Signal != "" {
		how = "killed by signal " + e.Signal
	}
	if e.Message != "" {
		how = e.Message
	}
	return fmt.Sprintf("%s failed: %s", stepName(e.Index, e.Where), how)
}

// stepName is how messages refer to a step: "step 2 (hello.go:14)".
func stepName(index int, where string) string {
	if where == "" {
		return fmt.Sprintf("step %d", index+1)
	}
	return fmt.Sprintf("step %d (%s)", index+1, where)
}

// rootless reports whether the spec asks for a user namespace.
func (s *Spec) rootless() bool { return len(s.UIDMap) > 0 || len(s.GIDMap) > 0 }

// validate catches caller mistakes before anything is started, so that they
// are reported as such rather than as an obscure mount error.
func (s *Spec) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Name == "" {
		bad("empty image name")
	}
	for name, p := range map[string]string{"Upper": s.Upper, "Work": s.Work, "Rootfs": s.Rootfs} {
		if !path.IsAbs(p) {
			bad("%s %q is not an absolute path", name, p)
		}
	}
	for _, l := range s.Lowers {
		if !path.IsAbs(l) {
			bad("lower %q is not an absolute path", l)
		}
	}
	if len(s.Lowers) > maxLowers {
		bad("%d lowers: overlayfs stacks at most %d", len(s.Lowers), maxLowers)
	}
	if s.WorkDir != "" && !path.IsAbs(s.WorkDir) {
		bad("workdir %q is not an absolute path", s.WorkDir)
	}
	if (len(s.UIDMap) > 0) != (len(s.GIDMap) > 0) {
		bad("UIDMap and GIDMap must be set together")
	}
	for _, b := range s.Binds {
		if !path.IsAbs(b.Source) || !path.IsAbs(b.Dest) || containerPath(b.Dest) == "/" {
			bad("bind %q -> %q: both paths must be absolute and Dest not /", b.Source, b.Dest)
		}
		if strings.HasPrefix(containerPath(b.Dest), "/.strata") {
			bad("bind %q -> %q: /.strata is reserved", b.Source, b.Dest)
		}
	}
	seen := map[string]bool{}
	for _, sec := range s.Secrets {
		if sec.Name == "" || sec.Name == "." || sec.Name == ".." || strings.ContainsAny(sec.Name, "/\x00") {
			bad("secret name %q: want a file name", sec.Name)
		}
		if seen[sec.Name] {
			bad("secret %q is given twice", sec.Name)
		}
		seen[sec.Name] = true
	}
	for i, st := range s.Steps {
		switch {
		case countTrue(st.Script != "", st.Copy != nil, len(st.Argv) > 0) != 1:
			bad("%s: exactly one of Script, Copy and Argv must be set", stepName(i, st.Where))
		case st.Copy != nil && (!path.IsAbs(st.Copy.Source) || !path.IsAbs(st.Copy.Dest)):
			bad("%s: copy %q -> %q: both paths must be absolute", stepName(i, st.Where), st.Copy.Source, st.Copy.Dest)
		}
		if st.Copy != nil {
			if _, err := ignore.Compile(st.Copy.Exclude); err != nil {
				bad("%s: copy %q: %v", stepName(i, st.Where), st.Copy.Source, err)
			}
		}
	}
	return errors.Join(errs...)
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// containerPath cleans an absolute container path.
func containerPath(p string) string { return path.Clean("/" + p) }

// childSpec is what the parent hands the child, as JSON on an inherited fd.
type childSpec struct {
	Mode        string // modeRun or modeCheck
	Name        string
	Lowers      []string // top first, skeleton last
	Upper, Work string
	Rootfs      string
	StepsDir    string // host folder holding the step scripts
	Env         []string
	WorkDir     string
	Binds       []Bind
	Steps       []childStep
	Rootless    bool
	TTYGroup    bool // gid 5 exists in the container: give it to /dev/pts
	Interactive bool
	// Background: the caller's terminal is on stdin but the caller is
	// not its foreground job (strata run ... &). The step then gets
	// /dev/null, and no console: changing the terminal's modes from the
	// background would stop the sandbox for good (SIGTTOU, which pid 1
	// of a namespace never takes).
	Background bool
	User       string
	Finish     *FinishSpec
	Remove     string // modeRemove: the tree to remove
	// Secrets is how many secrets follow on fdSecrets (their names and
	// values never appear in this spec, which is a file).
	Secrets int
	// Imports are the copy sources bound read-only under imagepath.Imports.
	Imports []importBind
}

// importBind is a copy step's source made readable to the run steps at
// imagepath.Imports/Name.
type importBind struct {
	Source, Name string
	Dir          bool
	// Mask, for a folder with left-out entries, is the host folder of
	// whiteouts laid over Source (see importMask).
	Mask string `json:",omitempty"`
}

// childStep is a Step as the child needs it.
type childStep struct {
	Script  string // path of the script in the container
	Shebang bool
	Copy    *Copy
	Argv    []string
	Where   string
}

// childResult is what the child reports back on its result fd.
type childResult struct {
	Step   *StepError      `json:",omitempty"`
	Error  string          `json:",omitempty"`
	Finish json.RawMessage `json:",omitempty"`
	Done   bool            // the child reached the end; absent after a crash
}

const (
	modeRun    = "run"
	modeCheck  = "check"
	modeRemove = "remove"
)
