package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// writeSecrets sends the secrets to the child. JSON on a pipe: the values
// exist only in the two processes' memory and, later, in a tmpfs.
func writeSecrets(w io.Writer, secrets []Secret) error {
	return json.NewEncoder(w).Encode(secrets)
}

// readSecrets reads what writeSecrets sent, in the child.
func readSecrets() ([]Secret, error) {
	f := os.NewFile(fdSecrets, "secrets")
	defer f.Close()
	var out []Secret
	if err := json.NewDecoder(f).Decode(&out); err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	return out, nil
}

// secretsFS fills a new, still detached tmpfs with one 0400 file per
// secret and makes it read-only, so that a step can neither change a
// secret nor leave anything there. A tmpfs is memory: nothing reaches a
// disk, and being its own mount it is never part of the upper dir.
func secretsFS(secrets []Secret) (detached, error) {
	size := 4096
	for _, s := range secrets {
		size += len(s.Value) + 4096
	}
	d, err := newFS("tmpfs", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC,
		"mode=0755", "size="+strconv.Itoa(size), "nr_inodes="+strconv.Itoa(len(secrets)+8))
	if err != nil {
		return detached{}, fmt.Errorf("secrets: %w", err)
	}
	d.what = "secrets tmpfs"
	for _, s := range secrets {
		if err := writeSecretFile(d.fd, s); err != nil {
			unix.Close(d.fd)
			return detached{}, fmt.Errorf("secret %s: %w", s.Name, err)
		}
		clear(s.Value)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(d.fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(d.fd)
		return detached{}, fmt.Errorf("secrets: make read-only: %w", err)
	}
	return d, nil
}

func writeSecretFile(dir int, s Secret) error {
	fd, err := unix.Openat(dir, s.Name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o400)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), s.Name)
	_, err = f.Write(s.Value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The mode given to openat is subject to the umask.
		err = unix.Fchmodat(dir, s.Name, 0o400, 0)
	}
	return err
}
