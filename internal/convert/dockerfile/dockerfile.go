// Package dockerfile converts a Dockerfile into a strata definitions
// package: one image per stage, build-only for all but the last. The
// Dockerfile is read by BuildKit's own parser (frontend/dockerfile/parser
// and instructions), so that what it accepts, its line continuations,
// heredocs, escapes and flags, is what `docker build` accepts; only the
// mapping to the DSL is written here.
package dockerfile

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/strata-build/strata/internal/convert/goname"
)

// Options tune Convert.
type Options struct {
	// Package is the Go package name of the output.
	Package string
	// Name is the image name of the last stage (the image the Dockerfile
	// builds); other stages are named after their AS name or stage-N.
	Name string
	// File names the Dockerfile in messages and comments.
	File string
	// Context is the build context folder COPY and ADD read from, as
	// `docker build CONTEXT`; it tells files from folders.
	Context string
	// Out is the folder the Go file is written to: the DSL resolves a
	// relative import path against its Go file's folder, so paths into
	// the context are written relative to Out.
	Out string
}

// Result is a converted Dockerfile.
type Result struct {
	// Source is the gofmt'ed Go file.
	Source []byte
	// Unsupported lists what has no strata equivalent, each with its
	// Dockerfile line; the source keeps each as a comment.
	Unsupported []string
}

// Convert converts the Dockerfile src.
func Convert(src []byte, opts Options) (Result, error) {
	if opts.Package == "" {
		opts.Package = "images"
	}
	if opts.File == "" {
		opts.File = "Dockerfile"
	}
	ast, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", opts.File, err)
	}
	stages, metaArgs, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", opts.File, err)
	}
	if len(stages) == 0 {
		return Result{}, fmt.Errorf("%s: no FROM: nothing to build", opts.File)
	}
	c := &converter{opts: opts, params: map[string]string{}, stageVars: map[string]string{}, used: map[string]bool{}}
	// Words are unquoted as docker build does, but variables are left as
	// ${NAME} for expr to splice the build parameters in; this also
	// parses RUN's --mount flags, which BuildKit reads at expansion.
	lex := shell.NewLex(ast.EscapeToken)
	expand := func(word string) (string, error) {
		w, _, err := lex.ProcessWord(word, keepVars{})
		return w, err
	}
	for i := range stages {
		for _, cmd := range stages[i].Commands {
			if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
				if err := e.Expand(expand); err != nil {
					return Result{}, fmt.Errorf("%s:%d: %w", opts.File, line(cmd), err)
				}
			}
		}
	}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			c.param(kv)
		}
	}
	var body bytes.Buffer
	for i := range stages {
		c.stage(&body, stages, i)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "// Package %s holds the images converted by `strata convert` from %s:\n// one image per stage, build-only for all but the last.\n//\n// Edit freely: this is ordinary strata Go code now.\npackage %s\n\n", opts.Package, opts.File, opts.Package)
	fmt.Fprintf(&out, "import \"github.com/strata-build/strata/dsl\"\n\n")
	if len(c.paramOrder) > 0 {
		out.WriteString("// Build arguments (ARG), as strata build parameters: --set KEY=VALUE.\nvar (\n")
		for _, k := range c.paramOrder {
			fmt.Fprintf(&out, "\t%s = dsl.Param(%q, %q)\n", c.params[k], k, c.defaults[k])
		}
		out.WriteString(")\n\n")
	}
	out.Write(body.Bytes())
	formatted, err := format.Source(out.Bytes())
	if err != nil {
		return Result{}, fmt.Errorf("%s: generated code does not parse (a bug in strata convert): %w\n%s", opts.File, err, out.Bytes())
	}
	return Result{Source: formatted, Unsupported: c.unsupported}, nil
}

// keepVars answers every variable with a reference to itself, so that
// expansion unquotes words without resolving them.
type keepVars struct{}

func (keepVars) Get(name string) (string, bool) { return "${" + name + "}", true }
func (keepVars) Keys() []string                 { return nil }

type converter struct {
	opts        Options
	params      map[string]string // ARG name → Go variable
	defaults    map[string]string
	paramOrder  []string
	stageVars   map[string]string // stage name (lowercase) or index → Go variable
	used        map[string]bool   // Go identifiers taken
	unsupported []string
	stageNotes  []string // notes of the stage being written
}

// param declares a build argument as a strata parameter, once.
func (c *converter) param(kv instructions.KeyValuePairOptional) string {
	if v, ok := c.params[kv.Key]; ok {
		return v
	}
	if c.defaults == nil {
		c.defaults = map[string]string{}
	}
	v := c.ident("arg_" + kv.Key)
	c.params[kv.Key] = v
	if kv.Value != nil {
		c.defaults[kv.Key] = *kv.Value
	}
	c.paramOrder = append(c.paramOrder, kv.Key)
	return v
}

// ident makes a Go identifier of s, unique in the file.
func (c *converter) ident(s string) string {
	id := goname.Exported(s)
	if strings.HasPrefix(s, "arg_") {
		id = "arg" + strings.TrimPrefix(id, "Arg") // unexported
	}
	base := id
	for n := 2; c.used[id]; n++ {
		id = base + strconv.Itoa(n)
	}
	c.used[id] = true
	return id
}

func line(cmd instructions.Command) int {
	if l := cmd.Location(); len(l) > 0 {
		return l[0].Start.Line
	}
	return 0
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expr returns s as a Go string expression, with references to declared
// build arguments ($X, ${X}) spliced in as the parameters.
func (c *converter) expr(s string) string {
	var parts []string
	last := 0
	for _, m := range varRef.FindAllStringSubmatchIndex(s, -1) {
		name := s[m[2]:m[3]]
		if m[2] < 0 {
			name = s[m[4]:m[5]]
		}
		v, ok := c.params[name]
		if !ok {
			continue
		}
		if m[0] > last {
			parts = append(parts, strconv.Quote(s[last:m[0]]))
		}
		parts = append(parts, v)
		last = m[1]
	}
	if last < len(s) || len(parts) == 0 {
		parts = append(parts, strconv.Quote(s[last:]))
	}
	return strings.Join(parts, " + ")
}

// stage writes the image of stages[i].
func (c *converter) stage(w *bytes.Buffer, stages []instructions.Stage, i int) {
	st := stages[i]
	last := i == len(stages)-1
	name := strings.ToLower(st.Name)
	imageName := name
	switch {
	case last && c.opts.Name != "":
		imageName = c.opts.Name
	case imageName == "":
		imageName = fmt.Sprintf("stage-%d", i)
	}
	v := c.ident(imageName)
	c.stageVars[strconv.Itoa(i)] = v
	if name != "" {
		c.stageVars[name] = v
	}

	out := w
	w = &bytes.Buffer{} // the method chain; notes go above it
	c.stageNotes = nil
	fmt.Fprintf(w, "var %s = dsl.New(%q).\n", v, imageName)
	fmt.Fprintf(w, "\tFrom(%s)", c.base(st))
	if st.Platform != "" {
		c.skip(st.Location[0].Start.Line, "FROM --platform=%s: strata builds for the host's platform", st.Platform)
	}
	workdir := "/"
	for _, cmd := range st.Commands {
		switch cmd := cmd.(type) {
		case *instructions.RunCommand:
			c.run(w, cmd)
		case *instructions.CopyCommand:
			c.copyCmd(w, line(cmd), cmd.SourcesAndDest, cmd.From, cmd.Chown, cmd.Chmod, workdir, "")
			if len(cmd.ExcludePatterns) > 0 || cmd.Parents || cmd.Link {
				c.skip(line(cmd), "COPY --exclude/--parents/--link have no strata equivalent and were left out")
			}
		case *instructions.AddCommand:
			c.copyCmd(w, line(cmd), cmd.SourcesAndDest, "", cmd.Chown, cmd.Chmod, workdir, cmd.Checksum)
		case *instructions.EnvCommand:
			for _, kv := range cmd.Env {
				fmt.Fprintf(w, ".\n\tEnv(%q, %s)", kv.Key, c.expr(kv.Value))
				for _, m := range varRef.FindAllStringSubmatch(kv.Value, -1) {
					if name := m[1] + m[2]; c.params[name] == "" {
						c.skip(line(cmd), "ENV %s refers to $%s, which docker build expands and strata keeps as written: write the value out", kv.Key, name)
					}
				}
			}
		case *instructions.ArgCommand:
			for _, kv := range cmd.Args {
				c.param(kv)
				// RUN sees a build argument as an environment
				// variable, as in docker build.
				fmt.Fprintf(w, ".\n\tBuildEnv(%q, %s)", kv.Key, c.params[kv.Key])
			}
		case *instructions.WorkdirCommand:
			workdir = path.Join(workdir, cmd.Path)
			if path.IsAbs(cmd.Path) {
				workdir = path.Clean(cmd.Path)
			}
			fmt.Fprintf(w, ".\n\tWorkDir(%s)", c.expr(workdir))
		case *instructions.UserCommand:
			fmt.Fprintf(w, ".\n\tUser(%s)", c.expr(cmd.User))
		case *instructions.LabelCommand:
			for _, kv := range cmd.Labels {
				fmt.Fprintf(w, ".\n\tLabel(%s, %s)", c.expr(kv.Key), c.expr(kv.Value))
			}
		case *instructions.MaintainerCommand:
			fmt.Fprintf(w, ".\n\tLabel(\"maintainer\", %s)", c.expr(cmd.Maintainer))
		case *instructions.EntrypointCommand:
			fmt.Fprintf(w, ".\n\tEntrypoint(%s)", c.args(cmd.ShellDependantCmdLine))
		case *instructions.CmdCommand:
			fmt.Fprintf(w, ".\n\tCmd(%s)", c.args(cmd.ShellDependantCmdLine))
		case *instructions.ExposeCommand:
			fmt.Fprintf(w, ".\n\tExpose(%s)", c.list(cmd.Ports))
		case *instructions.VolumeCommand:
			fmt.Fprintf(w, ".\n\tVolume(%s)", c.list(cmd.Volumes))
		default:
			c.skip(line(cmd), "%s has no strata equivalent and was left out: %s", strings.ToUpper(cmd.Name()), cmd)
		}
	}
	if !last {
		fmt.Fprintf(w, ".\n\tBuildOnly()")
	}
	w.WriteString("\n\n")

	var doc []string
	doc = append(doc, fmt.Sprintf("%s is stage %d of %s (%s).", v, i, c.opts.File, strings.TrimSpace(st.SourceCode)))
	if len(c.stageNotes) > 0 {
		doc = append(doc, "", "Not converted (strata convert):")
		for _, n := range c.stageNotes {
			doc = append(doc, "  - "+n)
		}
	}
	for _, d := range doc {
		if d == "" {
			out.WriteString("//\n")
			continue
		}
		fmt.Fprintf(out, "// %s\n", d)
	}
	out.Write(w.Bytes())
}

// skip notes what has no strata equivalent: in the list the command
// prints, and in the doc comment of the stage being written.
func (c *converter) skip(line int, format string, args ...any) {
	msg := fmt.Sprintf("%s:%d: %s", c.opts.File, line, fmt.Sprintf(format, args...))
	c.unsupported = append(c.unsupported, msg)
	c.stageNotes = append(c.stageNotes, strings.ReplaceAll(msg, "\n", " "))
}

// base is the Go expression of a stage's FROM.
func (c *converter) base(st instructions.Stage) string {
	name := strings.ToLower(st.BaseName)
	if v, ok := c.stageVars[name]; ok {
		return v
	}
	if name == "scratch" {
		return "dsl.Scratch()"
	}
	ref := st.BaseName
	if !strings.Contains(ref, "://") {
		ref = "docker://" + ref
	}
	return "dsl.Pull(" + c.expr(ref) + ")"
}

// run writes a RUN step. A shell-form script keeps docker's /bin/sh -c
// semantics (no -e, no -x) through a #! line, which strata runs as written.
// The exec form becomes an exec of its arguments in such a script: strata
// runs scripts, so it needs /bin/sh in the image where docker would not.
func (c *converter) run(w *bytes.Buffer, cmd *instructions.RunCommand) {
	script := ""
	if cmd.PrependShell {
		script = strings.Join(cmd.CmdLine, " ")
	} else {
		script = "exec " + shellQuote(cmd.CmdLine)
	}
	for _, f := range cmd.Files {
		c.skip(line(cmd), "RUN heredoc file %s: inlined into the script as written", f.Name)
		script += "\n" + f.Data
	}
	for _, m := range instructions.GetMounts(cmd) {
		switch m.Type {
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = strings.Trim(strings.ReplaceAll(m.Target, "/", "-"), "-")
			}
			fmt.Fprintf(w, ".\n\tCacheMount(%q, %q)", id, m.Target)
		default:
			c.skip(line(cmd), "RUN --mount=type=%s (target %s) has no direct strata equivalent: use .Secret or .Bind", m.Type, m.Target)
		}
	}
	for _, f := range cmd.FlagsUsed {
		if f != "mount" {
			c.skip(line(cmd), "RUN --%s has no strata equivalent and was left out", f)
		}
	}
	fmt.Fprintf(w, ".\n\tRun(%s)", goname.Quote("#!/bin/sh\n"+script+"\n"))
}

// copyCmd writes COPY and ADD as imports. dest is relative to the stage's
// working folder, as in docker build.
func (c *converter) copyCmd(w *bytes.Buffer, ln int, sd instructions.SourcesAndDest, from, chown, chmod, workdir, checksum string) {
	dest := sd.DestPath
	if !path.IsAbs(dest) {
		slash := strings.HasSuffix(dest, "/") || dest == "."
		dest = path.Join(workdir, dest)
		if slash && dest != "/" {
			dest += "/"
		}
	}
	if len(sd.SourcePaths) > 1 && !strings.HasSuffix(dest, "/") {
		dest += "/"
	}
	var opts []string
	if chown != "" {
		u, g, _ := strings.Cut(chown, ":")
		if g == "" {
			g = u
		}
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if err1 != nil || err2 != nil {
			c.skip(ln, "--chown=%s: strata takes numeric ids; the import keeps the default owner", chown)
		} else {
			opts = append(opts, fmt.Sprintf("dsl.Owner(%d, %d)", uid, gid))
		}
	}
	if chmod != "" {
		if m, err := strconv.ParseUint(chmod, 8, 32); err == nil {
			opts = append(opts, fmt.Sprintf("dsl.Mode(0o%o)", m))
		} else {
			c.skip(ln, "--chmod=%s: strata takes an octal mode; left out", chmod)
		}
	}
	for _, sc := range sd.SourceContents {
		c.skip(ln, "heredoc source %s: write it with a Run step", sc.Path)
	}
	for _, src := range sd.SourcePaths {
		var source string
		switch {
		case from != "":
			v, ok := c.stageVars[strings.ToLower(from)]
			if !ok {
				c.skip(ln, "COPY --from=%s: not a stage of this Dockerfile (images are not supported as sources); left out", from)
				continue
			}
			source = fmt.Sprintf("dsl.FromImage(%s, %q)", v, path.Join("/", src))
		case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
			sum, ok := strings.CutPrefix(checksum, "sha256:")
			if !ok {
				c.skip(ln, "ADD %s without --checksum=sha256:...: strata pins every URL; add its sha256", src)
				continue
			}
			source = fmt.Sprintf("dsl.URL(%q, %q)", src, sum)
			if !strings.HasSuffix(dest, "/") && dest != "/" {
				break
			}
			dest += path.Base(src)
		case strings.ContainsAny(src, "*?["):
			c.skip(ln, "source pattern %s: strata imports named files and folders; list them", src)
			continue
		default:
			local := filepath.Join(c.opts.Context, src)
			rel := src
			if c.opts.Out != "" {
				if r, err := filepath.Rel(c.opts.Out, local); err == nil {
					rel = filepath.ToSlash(r)
				}
			}
			fi, err := os.Stat(local)
			switch {
			case err != nil:
				c.skip(ln, "%s is not in the build context %s (%v); imported as a file", src, c.opts.Context, err)
				source = fmt.Sprintf("dsl.File(%q)", rel)
			case fi.IsDir():
				source = fmt.Sprintf("dsl.Dir(%q)", rel)
			default:
				source = fmt.Sprintf("dsl.File(%q)", rel)
				if isArchive(src) && checksum == "" && len(sd.SourcePaths) == 1 {
					c.skip(ln, "ADD of a local archive unpacks it in docker build; strata copies it: unpack it in a Run step")
				}
			}
		}
		args := append([]string{source, strconv.Quote(dest)}, opts...)
		fmt.Fprintf(w, ".\n\tImport(%s)", strings.Join(args, ", "))
	}
}

func isArchive(p string) bool {
	for _, s := range []string{".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar.zst"} {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
}

// args is an ENTRYPOINT or CMD as arguments: the exec form as written,
// the shell form as docker runs it, /bin/sh -c.
func (c *converter) args(cl instructions.ShellDependantCmdLine) string {
	if cl.PrependShell {
		return c.list([]string{"/bin/sh", "-c", strings.Join(cl.CmdLine, " ")})
	}
	return c.list(cl.CmdLine)
}

func (c *converter) list(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = c.expr(s)
	}
	return strings.Join(q, ", ")
}

// shellQuote joins args into one shell command line.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
