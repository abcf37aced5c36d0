package stacker

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/strata-build/strata/internal/convert/goname"
)

// layerConv converts one layer into one exported variable.
type layerConv struct {
	c     *converter
	l     *layerNode
	keys  map[string]*yaml.Node
	calls []string // ".From(...)", in order
	notes []string // doc comment lines on what has no equivalent
	// scratchImports: imports without dest, copied where stacker shows
	// them (/stacker/...) and removed after the run script.
	scratchImports bool
}

// handled are the directives that map to strata, in the order their calls
// are written.
var handled = []string{
	"from", "imports", "import", "overlay_dirs", "run", "generate_labels",
	"build_env", "environment", "labels", "annotations", "volumes",
	"entrypoint", "cmd", "full_command", "working_dir", "runtime_user",
	"binds", "build_only",
}

func (c *converter) layer(w *bytes.Buffer, l *layerNode) error {
	lc := &layerConv{c: c, l: l, keys: map[string]*yaml.Node{}}
	var other []*yaml.Node
	for i := 0; i+1 < len(l.node.Content); i += 2 {
		k := l.node.Content[i]
		lc.keys[k.Value] = l.node.Content[i+1]
		if !slices.Contains(handled, k.Value) {
			other = append(other, k, l.node.Content[i+1])
		}
	}
	for _, k := range handled {
		v, ok := lc.keys[k]
		if !ok {
			continue
		}
		if err := lc.directive(k, v); err != nil {
			return fmt.Errorf("%s:%d: layer %s: %s: %w", c.opts.File, v.Line, l.name, k, err)
		}
	}
	if lc.usesLayerName() && field(lc.keys["build_env"], "STACKER_LAYER_NAME") == nil {
		lc.call("// stacker sets it for the run script.\nBuildEnv(%q, %q)", "STACKER_LAYER_NAME", l.name)
	}
	if _, ok := lc.keys["from"]; !ok {
		return fmt.Errorf("%s:%d: layer %s: no from: every layer needs a base", c.opts.File, l.node.Line, l.name)
	}
	for i := 0; i < len(other); i += 2 {
		lc.unsupported(other[i].Value, other[i+1])
	}

	id := c.idents[l.name]
	fmt.Fprintf(w, "// %s is stacker's layer %s of %s.\n", id, l.name, c.opts.File)
	if cm := strings.TrimSpace(l.comment); cm != "" {
		w.WriteString("//\n")
		for _, line := range strings.Split(cm, "\n") {
			fmt.Fprintf(w, "// %s\n", strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#")))
		}
	}
	name := imageName(l.name)
	if name != l.name {
		lc.notes = append(lc.notes, c.note(l.name, "the layer name "+l.name, "a strata image name is lowercase letters, digits, '.', '_' and '-'; the image is "+name))
	}
	for _, n := range lc.notes {
		fmt.Fprintf(w, "//\n// %s\n", n)
	}
	fmt.Fprintf(w, "var %s = dsl.New(%q)", id, name)
	for _, call := range lc.calls {
		fmt.Fprintf(w, ".\n%s", call)
	}
	w.WriteString("\n\n")
	return nil
}

func (lc *layerConv) call(format string, args ...any) {
	lc.calls = append(lc.calls, fmt.Sprintf(format, args...))
}

// unsupported records a directive without equivalent: a doc comment on
// the variable and a line of the result.
func (lc *layerConv) unsupported(key string, v *yaml.Node, why ...string) {
	reason := strings.Join(why, " ")
	if reason == "" {
		reason = reasons[key]
	}
	if reason == "" {
		reason = "strata convert does not know this directive"
	}
	what := key + ": " + summary(v)
	lc.notes = append(lc.notes, lc.c.note(lc.l.name, what, reason))
}

// reasons says why a stacker directive has no strata equivalent.
var reasons = map[string]string{
	"arch":                  "strata builds for the platform of the machine it runs on",
	"os":                    "strata builds Linux images",
	"build_env_passthrough": "a strata step sees only the environment its definition sets (Env, BuildEnv, build parameters)",
	"bom":                   "strata does not generate a software bill of materials",
	"layer_type":            "use LayerTypes(...) or strata build --layer-type",
}

// summary is a short yaml rendering of a value for comments.
func summary(v *yaml.Node) string {
	if v.Kind == yaml.ScalarNode {
		return v.Value
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return "..."
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func (lc *layerConv) directive(key string, v *yaml.Node) error {
	switch key {
	case "from":
		return lc.from(v)
	case "imports":
		return lc.imports(v, StackerDir+"/imports")
	case "import":
		if _, ok := lc.keys["imports"]; ok {
			return fmt.Errorf("a layer cannot have both import and imports")
		}
		return lc.imports(v, StackerDir)
	case "overlay_dirs":
		return lc.overlayDirs(v)
	case "run":
		script, err := scriptOf(v)
		if err != nil {
			return err
		}
		if script != "" {
			lc.call("Run(%s)", lc.c.str(script))
		}
		if lc.scratchImports {
			// The cleanup is its own step after the script: stacker never
			// puts /stacker into the image.
			lc.call("// stacker shows imports without dest in %s during run only.\nRun(%s)", StackerDir, goname.Quote("rm -rf "+StackerDir))
		}
	case "generate_labels":
		script, err := scriptOf(v)
		if err != nil {
			return err
		}
		if script != "" {
			lc.call("GenerateLabels(%s)", lc.c.str(script))
		}
	case "build_env", "environment", "labels", "annotations":
		method := map[string]string{"build_env": "BuildEnv", "environment": "Env", "labels": "Label", "annotations": "Annotation"}[key]
		return eachPair(v, func(k, val string) {
			lc.call("%s(%s, %s)", method, lc.c.str(k), lc.c.str(val))
		})
	case "volumes":
		list, err := stringList(v)
		if err != nil {
			return err
		}
		if len(list) > 0 {
			lc.call("Volume(%s)", lc.c.strs(list))
		}
	case "entrypoint", "cmd", "full_command":
		args, err := command(v)
		if err != nil {
			return err
		}
		switch key {
		case "entrypoint":
			lc.call("Entrypoint(%s)", lc.c.strs(args))
		case "cmd":
			lc.call("Cmd(%s)", lc.c.strs(args))
		default:
			// full_command replaces both, clearing inherited ones.
			lc.call("Entrypoint(%s)", lc.c.strs(args))
			lc.call("// full_command clears the cmd.\nCmd()")
		}
	case "working_dir":
		lc.call("WorkDir(%s)", lc.c.str(v.Value))
	case "runtime_user":
		lc.call("User(%s)", lc.c.str(v.Value))
	case "binds":
		return lc.binds(v)
	case "build_only":
		var b bool
		if err := v.Decode(&b); err != nil {
			return fmt.Errorf("want true or false: %w", err)
		}
		if b {
			lc.call("BuildOnly()")
		}
	}
	return nil
}

// strs is a list of Go expressions for call arguments.
func (c *converter) strs(list []string) string {
	var out []string
	for _, s := range list {
		out = append(out, c.str(s))
	}
	return strings.Join(out, ", ")
}

func (lc *layerConv) local(p string) string {
	// A path that starts with a placeholder may be absolute; others are
	// rewritten around their placeholders, which stand for names.
	if lc.c.opts.LocalPath != nil && !path.IsAbs(p) && !strings.HasPrefix(p, "${{") {
		return lc.c.opts.LocalPath(p)
	}
	return p
}

func (lc *layerConv) from(v *yaml.Node) error {
	var f struct {
		Type     string `yaml:"type"`
		URL      string `yaml:"url"`
		Tag      string `yaml:"tag"`
		Insecure bool   `yaml:"insecure"`
		Hash     string `yaml:"hash"`
	}
	if err := v.Decode(&f); err != nil {
		return err
	}
	switch f.Type {
	case "scratch":
		lc.call("From(dsl.Scratch())")
	case "built":
		if f.Tag == "" {
			return fmt.Errorf("type built needs a tag")
		}
		id, ok := lc.c.ref(f.Tag)
		if !ok {
			return fmt.Errorf("built tag %s: no layer %s in this file or its prerequisites", f.Tag, f.Tag)
		}
		lc.call("From(%s)", id)
	case "docker":
		if f.URL == "" {
			return fmt.Errorf("type docker needs a url")
		}
		lc.pull(f.URL, f.Insecure)
	case "oci":
		if f.URL == "" {
			return fmt.Errorf("type oci needs a url")
		}
		if strings.HasPrefix(f.URL, "docker://") {
			lc.pull(f.URL, f.Insecure)
			return nil
		}
		u := strings.TrimPrefix(f.URL, "oci:")
		slash := strings.LastIndex(u, "/")
		colon := strings.Index(u[slash+1:], ":")
		tag := f.Tag
		if colon >= 0 {
			u, tag = u[:slash+1+colon], u[slash+2+colon:]
		}
		if tag == "" {
			return fmt.Errorf("url %s names no tag (want /path/to/layout:tag)", f.URL)
		}
		lc.call("From(dsl.Layout(%s, %s))", lc.c.str(lc.local(u)), lc.c.str(tag))
	case "tar":
		if f.URL == "" {
			return fmt.Errorf("type tar needs a url")
		}
		if _, _, ok := stackerURL(f.URL); ok {
			lc.unsupported("from", v, "a strata tarball base is a file or URL, not a file of another image; build the tarball into a file first")
			lc.call("// TODO: the tar base %s.\nFrom(dsl.Scratch())", f.URL)
			return nil
		}
		src := f.URL
		remote := strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
		if !remote {
			src = lc.local(src)
		}
		if f.Hash != "" {
			lc.call("From(dsl.Tarball(%s, dsl.SHA256(%s)))", lc.c.str(src), lc.c.str(f.Hash))
			return nil
		}
		if remote {
			lc.notes = append(lc.notes, lc.c.note(lc.l.name, "from: tar "+f.URL+" without a hash", "strata needs a URL base pinned: add dsl.SHA256(hex)"))
		}
		lc.call("From(dsl.Tarball(%s))", lc.c.str(src))
	case "":
		return fmt.Errorf("no type (docker, oci, tar, built or scratch)")
	default:
		return fmt.Errorf("unknown type %q (want docker, oci, tar, built or scratch)", f.Type)
	}
	return nil
}

func (lc *layerConv) pull(url string, insecure bool) {
	if !strings.HasPrefix(url, "docker://") {
		url = "docker://" + url
	}
	if insecure {
		lc.call("From(dsl.Pull(%s, dsl.Insecure()))", lc.c.str(url))
		return
	}
	lc.call("From(dsl.Pull(%s))", lc.c.str(url))
}

// importEntry is one entry of imports: a path, or a mapping.
type importEntry struct {
	Path string `yaml:"path"`
	Hash string `yaml:"hash"`
	Dest string `yaml:"dest"`
	Mode *int   `yaml:"mode"`
	UID  *int   `yaml:"uid"`
	GID  *int   `yaml:"gid"`
}

// imports converts imports (stackerDir /stacker/imports) and the
// deprecated import (stackerDir /stacker).
//
// An import with a dest is copied there, as strata's Import does. One
// without is only shown to the run script, at stackerDir/BASE, and never
// part of the image: it is imported there and the whole /stacker folder is
// removed by a step after the run script, so scripts keep working as
// written and the layer holds nothing of it.
func (lc *layerConv) imports(v *yaml.Node, stackerDir string) error {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	_, hasRun := lc.keys["run"]
	for _, it := range items {
		var e importEntry
		switch it.Kind {
		case yaml.ScalarNode:
			e.Path = it.Value
		case yaml.MappingNode:
			if err := it.Decode(&e); err != nil {
				return fmt.Errorf("line %d: %w", it.Line, err)
			}
		default:
			return fmt.Errorf("line %d: want a path or a mapping with path", it.Line)
		}
		if e.Path == "" {
			return fmt.Errorf("line %d: an import without path", it.Line)
		}
		if e.Dest != "" && !strings.HasPrefix(e.Dest, "/") && !strings.HasPrefix(e.Dest, "${{") {
			return fmt.Errorf("line %d: dest %s is not absolute", it.Line, e.Dest)
		}
		src, base, isDir := lc.source(e)
		dest := e.Dest
		if dest == "" {
			if !hasRun {
				lc.notes = append(lc.notes, lc.c.note(lc.l.name, "import "+e.Path+" without dest", "only a run script sees it, and this layer has none; left out"))
				continue
			}
			dest = stackerDir + "/" + base
			lc.scratchImports = true
		} else if isDir && strings.HasSuffix(dest, "/") {
			// stacker copies a folder into dest/; strata's dest becomes the
			// folder.
			dest += base
		}
		var opts []string
		if e.Mode != nil {
			opts = append(opts, fmt.Sprintf("dsl.Mode(0o%o)", *e.Mode))
		}
		if e.UID != nil || e.GID != nil {
			uid, gid := -1, -1
			if e.UID != nil {
				uid = *e.UID
			}
			if e.GID != nil {
				gid = *e.GID
			}
			if uid < 0 || gid < 0 {
				// stacker keeps the other id; strata's Owner sets both.
				lc.notes = append(lc.notes, lc.c.note(lc.l.name, "import "+e.Path+" with only one of uid and gid", "strata's Owner sets both; the other is 0"))
				uid, gid = max(uid, 0), max(gid, 0)
			}
			opts = append(opts, fmt.Sprintf("dsl.Owner(%d, %d)", uid, gid))
		}
		args := []string{src, lc.c.str(dest)}
		lc.call("Import(%s)", strings.Join(append(args, opts...), ", "))
	}
	return nil
}

// source is the strata Source of an import, its base name (where stacker
// shows it) and whether it is a folder.
func (lc *layerConv) source(e importEntry) (expr, base string, isDir bool) {
	if name, p, ok := stackerURL(e.Path); ok {
		if e.Hash != "" {
			lc.notes = append(lc.notes, lc.c.note(lc.l.name, "hash of import "+e.Path, "a file of another image is not pinned; strata rebuilds when that image changes"))
		}
		id, known := lc.c.ref(name)
		if !known {
			id = goname.Exported(name)
			lc.notes = append(lc.notes, lc.c.note(lc.l.name, "import "+e.Path, "no layer "+name+" in this file or its prerequisites"))
		}
		return fmt.Sprintf("dsl.FromImage(%s, %s)", id, lc.c.str(p)), path.Base(p), strings.HasSuffix(p, "/")
	}
	if strings.HasPrefix(e.Path, "http://") || strings.HasPrefix(e.Path, "https://") {
		if e.Hash == "" {
			lc.notes = append(lc.notes, lc.c.note(lc.l.name, "import "+e.Path+" without a hash", "strata wants a URL pinned: add its sha256, or build with --allow-unpinned-urls"))
		}
		u := e.Path
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i]
		}
		return fmt.Sprintf("dsl.URL(%s, %s)", lc.c.str(e.Path), lc.c.str(strings.ToLower(e.Hash))), path.Base(u), false
	}
	if e.Hash != "" {
		lc.notes = append(lc.notes, lc.c.note(lc.l.name, "hash of import "+e.Path, "strata hashes local files into the cache key but does not pin them"))
	}
	isDir = strings.HasSuffix(e.Path, "/")
	if !isDir && lc.c.opts.IsDir != nil {
		isDir = lc.c.opts.IsDir(e.Path)
	}
	base = path.Base(strings.TrimSuffix(e.Path, "/"))
	if isDir {
		return fmt.Sprintf("dsl.Dir(%s)", lc.c.str(lc.local(e.Path))), base, true
	}
	return fmt.Sprintf("dsl.File(%s)", lc.c.str(lc.local(e.Path))), base, false
}

// overlayDirs: a host folder's content in the image at dest (default /),
// which is an import of the folder.
func (lc *layerConv) overlayDirs(v *yaml.Node) error {
	var list []struct {
		Source string `yaml:"source"`
		Dest   string `yaml:"dest"`
	}
	if err := v.Decode(&list); err != nil {
		return err
	}
	for _, o := range list {
		if o.Source == "" {
			return fmt.Errorf("an entry without source")
		}
		dest := o.Dest
		if dest == "" {
			dest = "/"
		}
		lc.call("Import(dsl.Dir(%s), %s)", lc.c.str(lc.local(o.Source)), lc.c.str(dest))
	}
	return nil
}

func (lc *layerConv) binds(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode {
		return fmt.Errorf("want a list")
	}
	for _, it := range v.Content {
		var src, dest string
		switch it.Kind {
		case yaml.ScalarNode:
			f := strings.Fields(it.Value)
			switch {
			case len(f) == 1:
				src, dest = f[0], f[0]
			case len(f) == 3 && f[1] == "->":
				src, dest = f[0], f[2]
			default:
				return fmt.Errorf("line %d: %q: want PATH or SOURCE -> DEST", it.Line, it.Value)
			}
		case yaml.MappingNode:
			var b struct {
				Source string `yaml:"source"`
				Dest   string `yaml:"dest"`
			}
			if err := it.Decode(&b); err != nil {
				return err
			}
			if b.Source == "" {
				return fmt.Errorf("line %d: a bind without source", it.Line)
			}
			src, dest = b.Source, b.Dest
			if dest == "" {
				dest = src
			}
		default:
			return fmt.Errorf("line %d: want PATH, SOURCE -> DEST or a mapping", it.Line)
		}
		lc.call("Bind(%s, %s)", lc.c.str(lc.local(src)), lc.c.str(dest))
	}
	return nil
}

// scriptOf is the one script of run or generate_labels: stacker joins a
// list's entries with newlines into one script, run with sh -xe unless it
// starts with "#!", which is what strata's Run does with a script.
func scriptOf(v *yaml.Node) (string, error) {
	list, err := stringList(v)
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", nil
	}
	s := strings.Join(list, "\n")
	if len(list) > 1 && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s, nil
}

// stringList is a string or a list of strings.
func stringList(v *yaml.Node) ([]string, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return nil, nil
		}
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		var out []string
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a string", it.Line)
			}
			out = append(out, it.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings")
}

// command is cmd, entrypoint or full_command: a list, or a string split
// into words as a shell would (stacker uses shlex).
func command(v *yaml.Node) ([]string, error) {
	if v.Kind == yaml.SequenceNode {
		return stringList(v)
	}
	if v.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("want a string or a list of strings")
	}
	return shellWords(v.Value)
}

// shellWords splits s into words with POSIX shell quoting: single quotes,
// double quotes (where \ escapes " \ $ `) and backslashes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("%q: unterminated single quote", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q: unterminated double quote", s)
			}
		default:
			inWord = true
			cur.WriteByte(ch)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// eachPair calls fn for each key and value of a mapping, in the yaml's order.
func eachPair(v *yaml.Node, fn func(k, val string)) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if val.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: %s: want a string value", k.Line, k.Value)
		}
		value := val.Value
		if val.Tag == "!!null" {
			value = ""
		}
		fn(k.Value, value)
	}
	return nil
}

// imageName is a layer name as a strata image name (dsl.New): lowercase
// letters, digits, and '.', '_' or '-' after the first character, at most
// 63 characters; anything else becomes '-'.
func imageName(layer string) string {
	var b strings.Builder
	for i, r := range strings.ToLower(layer) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			r = '-'
			if i == 0 {
				r = 'x'
			}
		}
		b.WriteRune(r)
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// usesLayerName reports whether the layer's scripts read
// STACKER_LAYER_NAME, which stacker sets in their environment.
func (lc *layerConv) usesLayerName() bool {
	for _, k := range []string{"run", "generate_labels"} {
		if v, ok := lc.keys[k]; ok {
			if list, err := stringList(v); err == nil && strings.Contains(strings.Join(list, "\n"), "STACKER_LAYER_NAME") {
				return true
			}
		}
	}
	return false
}
