package sandbox

import (
	"os"
	"path/filepath"
	"strings"
)

// prepareImports makes the sources of the copy steps readable to the run
// steps at ImportDir/BASE, as stacker's /stacker/imports: a step can unpack
// an imported archive or run an imported installer without first copying
// it into the image. The mount points are created in the stage's steps
// folder, which the container sees at /.strata, so they never reach the
// upper dir. A source that does not exist is left to the copy step, which
// reports it with the step's position.
func prepareImports(cs *childSpec, steps []Step) error {
	seen := map[string]bool{}
	for _, st := range steps {
		if st.Copy == nil {
			continue
		}
		src := filepath.Clean(st.Copy.Source)
		name := filepath.Base(src)
		if seen[name] {
			continue // the same source imported twice (validate refused two sources with one name)
		}
		fi, err := os.Stat(src)
		if err != nil || !(fi.IsDir() || fi.Mode().IsRegular()) {
			continue
		}
		seen[name] = true
		dir := filepath.Join(cs.StepsDir, strings.TrimPrefix(ImportDir, "/.strata/"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		point := filepath.Join(dir, name)
		if fi.IsDir() {
			err = os.Mkdir(point, 0o755)
		} else {
			err = os.WriteFile(point, nil, 0o644)
		}
		if err != nil {
			return err
		}
		cs.Imports = append(cs.Imports, importBind{Source: src, Name: name, Dir: fi.IsDir()})
	}
	return nil
}
