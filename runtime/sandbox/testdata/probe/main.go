// Command probe tries, from inside a step, what a step must not be able to
// do, and prints what happened. The sandbox tests run it.
//
//	probe key NAME       read a user key of the session keyring
//	probe abstract NAME  connect to the abstract unix socket @NAME
package main

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	switch os.Args[1] {
	case "key":
		id, err := unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, "user", os.Args[2], 0)
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
	case "abstract":
		c, err := net.Dial("unix", "@"+os.Args[2])
		if err != nil {
			fmt.Println("refused:", err)
			return
		}
		c.Close()
		fmt.Println("connected")
	}
}
