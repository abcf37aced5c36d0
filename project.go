package strata

import (
	"os"
	"path/filepath"
)

// The store and the output layout belong to the project, not to the folder
// a command happens to run in: `strata build` in images/, `strata publish`
// at the root and `mage build` anywhere in the module all use the same
// ones. A project is the Go module (the nearest folder above with a go.mod);
// outside any module, the working directory.
const (
	storeName  = ".strata"
	layoutName = "oci"
)

// ProjectRoot returns the root of the Go module holding dir (the nearest
// folder at or above it with a go.mod), or dir itself, made absolute, when
// there is none.
func ProjectRoot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	for d := abs; ; {
		if fi, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && !fi.IsDir() {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return abs
		}
		d = parent
	}
}

// DefaultStore is the store of builds run in the working directory:
// .strata at the project root.
func DefaultStore() string { return projectPath(storeName) }

// DefaultLayout is the output layout of builds run in the working
// directory: oci at the project root.
func DefaultLayout() string { return projectPath(layoutName) }

// projectPath names a folder at the project root, relative to the working
// directory when it is the working directory's own (so messages and the
// flags' defaults stay short).
func projectPath(name string) string {
	root := ProjectRoot(".")
	if wd, err := os.Getwd(); err == nil && wd == root {
		return name
	}
	return filepath.Join(root, name)
}
