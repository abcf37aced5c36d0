package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/opencontainers/go-digest"
)

const dpkgStatus = `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: base-files
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
Conffiles:
 /etc/debian_version 1e5ce1d2
`

const apkInstalled = `C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl

C:Q1def=
P:busybox
V:1.36.1-r5
A:x86_64
`

// tinyBinary compiles, once, a tiny program that links a versioned module
// (go-digest, which the module cache has since strata requires it): test
// binaries carry no module list.
var tinyBinary = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "sbom-gobin")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"go.mod":  "module example.com/tiny\n\ngo 1.26\n\nrequire github.com/opencontainers/go-digest v1.0.0\n",
		"main.go": "package main\n\nimport \"github.com/opencontainers/go-digest\"\n\nfunc main() { println(digest.FromString(\"x\")) }\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return nil, err
		}
	}
	// As a user's module is built: go.sum from go mod tidy, the default
	// proxy and an empty GOFLAGS, nothing that makes the go command lenient.
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-trimpath", "-o", "tiny", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return os.ReadFile(filepath.Join(dir, "tiny"))
})

func fixture(t *testing.T) fstest.MapFS {
	bin, err := tinyBinary()
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{
		"etc/os-release":                  {Data: []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")},
		"var/lib/dpkg/status":             {Data: []byte(dpkgStatus)},
		"var/lib/dpkg/status.d/tzdata":    {Data: []byte("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")},
		"var/lib/dpkg/status.d/x.md5sums": {Data: []byte("abc  /usr/x\n")},
		"lib/apk/db/installed":            {Data: []byte(apkInstalled)},
		"usr/local/bin/tool":              {Data: bin, Mode: 0o755},
		"opt/app/also-tool":               {Data: bin, Mode: 0o755},
		"usr/local/bin/not-exec":          {Data: bin, Mode: 0o644},
		"usr/local/bin/script":            {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"proc/skipped":                    {Data: bin, Mode: 0o755},
	}
}

// TestScan: dpkg (installed only, and status.d without md5sums), apk and
// the Go modules of executables are found, with the purls scanners match
// on; a module linked by two binaries is one package found in both.
func TestScan(t *testing.T) {
	pkgs, err := Scan(context.Background(), fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	byPurl := map[string]Package{}
	var purls []string
	for _, p := range pkgs {
		byPurl[p.PURL()] = p
		purls = append(purls, p.PURL())
	}
	if !slices.IsSorted(purls) { // the distribution, with no purl, first
		t.Errorf("packages not sorted by purl: %q", purls)
	}
	for _, want := range []string{
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
		"pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
		"pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
		"pkg:apk/debian/musl@1.2.4-r2?arch=x86_64&distro=debian-12",
		"pkg:apk/debian/busybox@1.36.1-r5?arch=x86_64&distro=debian-12",
		"pkg:golang/github.com/opencontainers/go-digest@v1.0.0",
	} {
		if _, ok := byPurl[want]; !ok {
			t.Errorf("%s not found in %q", want, purls)
		}
	}
	for _, p := range purls {
		if strings.Contains(p, "removed-but-configured") || strings.Contains(p, "strata-build/strata@") {
			t.Errorf("%s should not be listed", p)
		}
	}
	d := byPurl["pkg:golang/github.com/opencontainers/go-digest@v1.0.0"]
	if want := []string{"/opt/app/also-tool", "/usr/local/bin/tool"}; !slices.Equal(d.Found, want) {
		t.Errorf("go-digest found in %q, want %q", d.Found, want)
	}
	if os := pkgs[0]; os.Type != OS || os.Name != "debian" || os.Version != "12" {
		t.Errorf("the first package is %+v, want the distribution debian 12", os)
	}
	var stdlib bool
	for _, p := range pkgs {
		if p.Type == "golang" && p.Name == "stdlib" && strings.HasPrefix(p.Version, "go1.") {
			stdlib = true
		}
	}
	if !stdlib {
		t.Errorf("no stdlib package in %q", purls)
	}
}

// TestDocument: the SPDX document is valid JSON with the fields scanners
// need, the same bytes every time, and its only time is the epoch.
func TestDocument(t *testing.T) {
	ctx := context.Background()
	m := digest.FromString("manifest")
	epoch := time.Unix(1700000000, 0)
	var docs [][]byte
	for range 2 {
		pkgs, err := Scan(ctx, fixture(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Document("example/debian", m, epoch, pkgs)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	if !bytes.Equal(docs[0], docs[1]) {
		t.Fatal("two scans of the same file system gave different documents")
	}
	var doc document
	if err := json.Unmarshal(docs[0], &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" || !strings.HasSuffix(doc.DocumentNamespace, m.Encoded()) {
		t.Errorf("document header: %+v", doc)
	}
	n, err := Count(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	if n != len(doc.Packages)-2 || n < 7 {
		t.Errorf("Count = %d, packages %d", n, len(doc.Packages))
	}
	if len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("%d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
	}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("SPDXID %s twice", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}
	if _, err := Document("x", "sha256:nope", epoch, nil); err == nil {
		t.Error("a bad manifest digest was accepted")
	}
}
