// Package sbom lists the packages of an image's root file system and writes
// them as an SPDX 2.3 JSON document, the software bill of materials strata
// stores beside every image (as an OCI 1.1 referrer of its manifest) and
// publishes with it.
//
// It reads an io/fs.FS (storage.MergedFS over the image's layer folders in
// a build), so it never mounts and tests feed it fixtures. What it finds:
// dpkg's status database (and distroless's status.d), apk's installed
// database, and the build info Go embeds in its binaries. The document
// holds no clock time but the build's SOURCE_DATE_EPOCH, and lists its
// packages sorted: the same image gives the same bytes.
package sbom

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"io"
	"io/fs"
	"path"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
)

// Package is one package found in the image.
type Package struct {
	// Type is the purl type: "deb", "apk" or "golang"; or OS for the
	// distribution itself (ID and VERSION_ID of /etc/os-release).
	Type    string
	Name    string
	Version string
	// Arch is the package's architecture, for deb and apk.
	Arch string
	// Namespace is the purl namespace: the distribution ("debian",
	// "ubuntu", "alpine") for deb and apk, the module path's folder for
	// golang.
	Namespace string
	// Distro qualifies OS packages' purls ("debian-12"), which is how
	// scanners pick the distribution's advisories.
	Distro string
	// Found are the files of the image it was read from, sorted.
	Found []string
}

// OS is the Type of the package that stands for the image's distribution.
const OS = "os"

// Limits of the search for Go binaries: an image is not a place to spend
// a build's time on. Files larger than MaxBinarySize are skipped, and the
// search stops after MaxBinaries executables were read.
const (
	MaxBinarySize = 200 << 20
	MaxBinaries   = 20000
)

// skipDirs are never searched for binaries: in a built image they are
// empty mount points, or hold no one's programs.
var skipDirs = map[string]bool{"proc": true, "sys": true, "dev": true, "run": true, "tmp": true, "var/cache": true, "var/lib/dpkg": true, "usr/share": true, "usr/include": true}

// Scan lists the packages of the root file system fsys, sorted by purl.
// A database it cannot read (missing, or unreadable to a rootless build)
// is left out, not an error: an SBOM lists what could be known.
func Scan(ctx context.Context, fsys fs.FS) ([]Package, error) {
	distro, version := osRelease(fsys)
	var pkgs []Package
	add := func(found string, ps []Package) {
		for _, p := range ps {
			p.Found = []string{"/" + found}
			pkgs = append(pkgs, p)
		}
	}
	if b, err := fs.ReadFile(fsys, "var/lib/dpkg/status"); err == nil {
		add("var/lib/dpkg/status", parseDpkg(b, true))
	}
	// Distroless images have no dpkg, and one stanza file per package.
	if entries, err := fs.ReadDir(fsys, "var/lib/dpkg/status.d"); err == nil {
		for _, e := range entries {
			p := path.Join("var/lib/dpkg/status.d", e.Name())
			if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".md5sums") {
				continue
			}
			if b, err := fs.ReadFile(fsys, p); err == nil {
				add(p, parseDpkg(b, false))
			}
		}
	}
	if b, err := fs.ReadFile(fsys, "lib/apk/db/installed"); err == nil {
		add("lib/apk/db/installed", parseApk(b))
	}
	for i := range pkgs {
		if pkgs[i].Type == "deb" || pkgs[i].Type == "apk" {
			pkgs[i].Namespace = distro
			if pkgs[i].Namespace == "" {
				pkgs[i].Namespace = map[string]string{"deb": "debian", "apk": "alpine"}[pkgs[i].Type]
			}
			if distro != "" && version != "" {
				pkgs[i].Distro = distro + "-" + version
			}
		}
	}
	if distro != "" {
		// Trivy takes the distribution of OS packages from this package.
		pkgs = append(pkgs, Package{Type: OS, Name: distro, Version: version, Found: []string{"/etc/os-release"}})
	}
	gos, err := scanGo(ctx, fsys)
	if err != nil {
		return nil, err
	}
	pkgs = append(pkgs, gos...)
	return merge(pkgs), nil
}

// merge sorts pkgs by purl and folds the same purl found in several files
// (one Go module in many binaries) into one package.
func merge(pkgs []Package) []Package {
	sort.SliceStable(pkgs, func(a, b int) bool { return pkgs[a].PURL() < pkgs[b].PURL() })
	var out []Package
	for _, p := range pkgs {
		if n := len(out); n > 0 && out[n-1].PURL() == p.PURL() {
			out[n-1].Found = append(out[n-1].Found, p.Found...)
			continue
		}
		out = append(out, p)
	}
	for i := range out {
		sort.Strings(out[i].Found)
		out[i].Found = slices.Compact(out[i].Found)
	}
	return out
}

// osRelease returns ID and VERSION_ID of /etc/os-release (or
// /usr/lib/os-release, which it is usually a link to).
func osRelease(fsys fs.FS) (id, version string) {
	b, err := fs.ReadFile(fsys, "etc/os-release")
	if err != nil {
		if b, err = fs.ReadFile(fsys, "usr/lib/os-release"); err != nil {
			return "", ""
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	return id, version
}

// stanzas splits an RFC 822-style database (dpkg's status, apk's
// installed) into paragraphs of fields; continuation lines (dpkg's
// descriptions and conffiles) are dropped, since no field read here has
// any. Both formats are this simple, and the libraries that read them
// (Syft's and Trivy's catalogers) would bring hundreds of modules.
func stanzas(b []byte, sep string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = map[string]string{}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, sep)
		if !ok {
			continue
		}
		if _, dup := cur[k]; !dup {
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// parseDpkg reads dpkg's status file. With checkStatus only installed
// packages count (the file also remembers removed ones whose
// configuration stayed); status.d files have no Status field.
func parseDpkg(b []byte, checkStatus bool) []Package {
	var out []Package
	for _, s := range stanzas(b, ":") {
		if s["Package"] == "" || s["Version"] == "" {
			continue
		}
		if st := strings.Fields(s["Status"]); checkStatus && (len(st) != 3 || st[2] != "installed") {
			continue
		}
		out = append(out, Package{Type: "deb", Name: s["Package"], Version: s["Version"], Arch: s["Architecture"]})
	}
	return out
}

// parseApk reads apk's installed database: P is the name, V the version,
// A the architecture.
func parseApk(b []byte) []Package {
	var out []Package
	for _, s := range stanzas(b, ":") {
		if s["P"] == "" || s["V"] == "" {
			continue
		}
		out = append(out, Package{Type: "apk", Name: s["P"], Version: s["V"], Arch: s["A"]})
	}
	return out
}

// scanGo reads the build info of the Go executables of fsys: their main
// module (when versioned), the modules they link and the standard library
// (as "stdlib", the name scanners match Go's own advisories on).
func scanGo(ctx context.Context, fsys fs.FS) ([]Package, error) {
	var out []Package
	read := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && p != "." {
				return fs.SkipDir // unreadable to a rootless build
			}
			return nil
		}
		if d.IsDir() {
			if skipDirs[p] {
				return fs.SkipDir
			}
			return ctx.Err()
		}
		if !d.Type().IsRegular() || read >= MaxBinaries {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm()&0o111 == 0 || info.Size() > MaxBinarySize || info.Size() < 4 {
			return nil
		}
		read++
		out = append(out, goBinary(fsys, p)...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// goBinary returns the modules of the Go executable p, nothing if p is
// not one.
func goBinary(fsys fs.FS, p string) []Package {
	f, err := fsys.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return nil
	}
	var magic [4]byte
	if _, err := ra.ReadAt(magic[:], 0); err != nil || string(magic[:]) != "\x7fELF" {
		return nil
	}
	bi, err := buildinfo.Read(ra)
	if err != nil {
		return nil
	}
	found := []string{"/" + p}
	var out []Package
	mod := func(m *debug.Module) {
		for m != nil && m.Replace != nil {
			m = m.Replace
		}
		if m == nil || m.Path == "" || m.Version == "" || m.Version == "(devel)" || strings.HasPrefix(m.Version, "(") {
			return
		}
		ns, name := path.Split(m.Path)
		out = append(out, Package{Type: "golang", Namespace: strings.TrimSuffix(ns, "/"), Name: name, Version: m.Version, Found: found})
	}
	mod(&bi.Main)
	for _, d := range bi.Deps {
		mod(d)
	}
	if bi.GoVersion != "" {
		out = append(out, Package{Type: "golang", Name: "stdlib", Version: strings.Fields(bi.GoVersion)[0], Found: found})
	}
	return out
}
