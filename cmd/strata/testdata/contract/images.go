// Package contract holds the definitions of the runtime contract tests
// (cmd/strata/contract_test.go): each image prints or leaves behind what
// the tests assert on, as root and as an unprivileged user.
package contract

import (
	"os"

	"github.com/strata-build/strata/dsl"
	"github.com/strata-build/strata/examples/hello"
)

// rwBind is the host folder the facts image writes into; the test names it
// (a definition can read the environment: it is Go).
func rwBind() string {
	if d := os.Getenv("STRATA_CONTRACT_RW"); d != "" {
		return d
	}
	return os.TempDir()
}

// Facts prints what a build step sees, one "fact NAME=VALUE" line each.
var Facts = dsl.New("facts").
	From(hello.Busybox).
	Env("IMAGE_ENV", "in-the-config").
	BuildEnv("BUILD_ONLY", "steps-only").
	Bind("ro", "/mnt/ro", dsl.ReadOnly()).
	Bind(rwBind(), "/mnt/rw").
	Import(dsl.File("tool.sh"), "/usr/share/tool.sh").
	Run(`
f() { echo "fact $1=$2"; }
f hostname "$(hostname)"
f net "$(readlink /proc/self/ns/net)"
f resolv "$(md5sum < /etc/resolv.conf | cut -d' ' -f1)"
f env "$(tr '\0' '\n' < /proc/$$/environ | sort | tr '\n' ' ')"
f sys "$(awk '$2=="/sys"{print $3}' /proc/mounts)"
f proc "$(awk '$2=="/proc"{print $3}' /proc/mounts)"
f pids "$(ls /proc | grep -c '^[0-9]')"
f pid1 "$(tr '\0' ' ' < /proc/1/cmdline | cut -c1-15)"
for d in null zero full random urandom tty; do test -c /dev/$d && f dev-$d char; done
f pts "$(awk '$2=="/dev/pts"{print $3}' /proc/mounts)"
f shm "$(awk '$2=="/dev/shm"{print $3}' /proc/mounts)"
f zero "$(head -c 3 /dev/zero | od -An -tx1 | tr -d ' ')"
f ro "$(cat /mnt/ro/in)"
touch /mnt/ro/x 2>/dev/null || f ro-write refused
echo written-by-the-step > /mnt/rw/out
f import "$(sh /.strata/imports/tool.sh)"
f flags "$-"
# A daemon, untraced: it must not outlive the step.
set +x
sleep 1000.77 </dev/null >/dev/null 2>&1 &
`).
	Run(`#!/bin/sh
echo "fact shebang-flags=[$-]"
if ps | grep -q '[s]leep 1000.77'; then echo "fact daemon=running"; else echo "fact daemon=gone"; fi
`)

// Owners leaves files of several owners and a whiteout, and installs a
// package whose files belong to uid 1234.
var Owners = dsl.New("owners").
	From(hello.Busybox).
	Import(dsl.File("strata-test_1.0_all.deb"), "/var/cache/debs/").
	Run(`
echo made-by-root > /made
touch /owned && chown 1234:1234 /owned
rm /bin/vi
mkdir -p /var/lib/dpkg/info && touch /var/lib/dpkg/status
dpkg -i /.strata/imports/strata-test_1.0_all.deb
strata-test
`).
	// Labels read the rootfs as the steps left it, owners included, and
	// what the script writes elsewhere stays out of the layer.
	GenerateLabels("stat -c %u:%g /owned > /stacker/oci-labels/owned-by; touch /label-script-was-here")

// Runme is run by strata run: its config sets a user, a folder, an
// environment and an entrypoint that reads stdin and exits 3.
var Runme = dsl.New("runme").
	From(hello.Busybox).
	Run(`
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
echo 'app:x:4321:4322:app:/home/app:/bin/sh' >> /etc/passwd
printf 'root:x:0:\napp:x:4322:\n' > /etc/group
mkdir -p /home/app /usr/local/bin && chown 4321:4322 /home/app
cat > /usr/local/bin/facts <<'EOF'
#!/bin/sh
echo "uid=$(id -u) gid=$(id -g) cwd=$(pwd) RUN_ENV=$RUN_ENV host=$(hostname)"
read line
echo "got=$line"
exit 3
EOF
chmod 755 /usr/local/bin/facts
`).
	Env("RUN_ENV", "from-config").
	User("app").
	WorkDir("/home/app").
	Entrypoint("/usr/local/bin/facts")

// Builder is build-only: strata chroot opens it from the store.
var Builder = dsl.New("builder").
	From(hello.Busybox).
	BuildOnly().
	Run("echo made-in-builder > /built")

// Broken fails after changing the file system, for --shell-on-failure.
var Broken = dsl.New("broken").
	From(hello.Busybox).
	Run("echo state-at-failure > /state\nexit 4")

// Sleeper runs until it is interrupted, leaving behind a folder that only
// the build's user namespace may remove when the build is rootless.
var Sleeper = dsl.New("sleeper").
	From(hello.Busybox).
	Run("mkdir -p /locked/in && touch /locked/in/f && chown -R 1234:1234 /locked && chmod 700 /locked /locked/in\n" +
		"echo started; sleep 1000.66; echo not reached")
