//go:build ignore

// Zero-install entry to this project's mage targets: go run mage.go TARGET.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
