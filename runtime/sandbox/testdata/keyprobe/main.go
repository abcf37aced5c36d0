// Command keyprobe looks for a key in the session keyring it was started
// with and prints its payload, or "none". TestStepsDoNotPossessTheCallersKeyring
// runs it in a step.
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, "user", os.Args[1], 0)
	if err != nil {
		fmt.Println("none:", err)
		return
	}
	buf := make([]byte, 256)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		fmt.Println("found, unreadable:", err)
		return
	}
	fmt.Printf("read %s\n", buf[:n])
}
