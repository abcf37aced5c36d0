//go:build mage

// Targets of strata's own build, test, lint and benchmarks. Run them with
// zero install from the repository root: go run mage.go TARGET.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
)

// Default is what a bare "mage" runs.
var Default = Build

// aptPackages are the Debian packages strata and its tests use.
var aptPackages = []string{
	"busybox-static",                        // the network-free base of the examples and tests
	"squashfs-tools",                        // mksquashfs for squashfs layers
	"erofs-utils",                           // mkfs.erofs and fsck.erofs for erofs layers
	"cryptsetup-bin",                        // veritysetup: checks strata's dm-verity trees; mount uses it
	"squashfuse", "fuse-overlayfs", "fuse3", // strata mount without root
	"uidmap",          // newuidmap/newgidmap for rootless builds
	"umoci", "skopeo", // tests open the built layouts with them
	"zstd", "pigz", // benchmarks compare against them
	"docker-registry", "apache2-utils", "openssl", // a real registry (htpasswd, TLS) for tests
	"mmdebstrap",     // the Debian base of examples/debian
	"podman", "runc", // publish tests load and run published images (runc: crun refuses hybrid cgroups)
	"git",
}

// Deps installs the Debian packages strata and its tests need (as root).
func Deps() error {
	var missing []string
	for _, p := range aptPackages {
		if exec.Command("dpkg-query", "-W", "-f=${Status}", p).Run() != nil {
			missing = append(missing, p)
			continue
		}
		out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing Debian packages %s: run as root or apt-get install them", strings.Join(missing, " "))
	}
	env := map[string]string{"DEBIAN_FRONTEND": "noninteractive"}
	if err := sh.RunWith(env, "apt-get", "update", "-q"); err != nil {
		return err
	}
	return sh.RunWith(env, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...)
}

// Build compiles the strata CLI into bin/strata.
func Build() error {
	return sh.RunV("go", "build", "-o", "bin/strata", "./cmd/strata")
}

// Example builds examples/hello with the CLI and runs it.
func Example() error {
	mg.SerialDeps(Deps, Build)
	strata, err := filepath.Abs("bin/strata")
	if err != nil {
		return err
	}
	if err := runIn("examples/hello", strata, "build"); err != nil {
		return err
	}
	return runIn("examples/hello", strata, "run", "hello")
}

// Test runs the whole test suite (as root: it sets up what it needs).
func Test() error {
	mg.SerialDeps(Deps, Build)
	if err := rootlessSetup(); err != nil { // magefiles/rootless.go
		return err
	}
	return sh.RunV("go", "test", "-count=1", "-timeout=40m", "./...")
}

// Lint runs gofmt and go vet.
func Lint() error {
	out, err := sh.Output("gofmt", "-l", ".")
	if err != nil {
		return err
	}
	if out != "" {
		return fmt.Errorf("files need gofmt:\n%s", out)
	}
	return sh.RunV("go", "vet", "./...")
}

func runIn(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
	fmt.Printf("+ (cd %s && %s %s)\n", dir, filepath.Base(name), strings.Join(args, " "))
	return cmd.Run()
}
