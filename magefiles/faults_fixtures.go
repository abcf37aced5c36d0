//go:build mage

package main

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/klauspost/pgzip"
)

// fixtureSeed makes the fixtures the same in every run (unlike the trial
// seed), so the clean digests of one run compare with another's.
const fixtureSeed = 12

// writeNoise writes size bytes that do not compress: the images import
// it to make incompressible files that are still the same in every
// build, which the reproducibility check needs (/dev/urandom in a step
// would make every layer differ).
func writeNoise(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{fixtureSeed})
	if _, err := io.CopyN(f, rng, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeTarballBase writes a gzip rootfs tarball of about mib MiB of
// files (plus /bin/busybox and /bin/sh, so the image on it can run a
// step): files of 128 KiB of text, in folders of 64, which gzip shrinks
// about threefold, so that unpacking spends its time on both
// decompression and file creation, as a distribution tarball does.
func writeTarballBase(path string, mib int) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw, err := pgzip.NewWriterLevel(f, pgzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body io.Reader) error {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range []string{"bin/", "tmp/", "data/"} {
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}, nil); err != nil {
			return err
		}
	}
	bb, err := os.Open("/bin/busybox")
	if err != nil {
		return fmt.Errorf("the tarball base needs the host's static busybox (busybox-static): %w", err)
	}
	defer bb.Close()
	fi, err := bb.Stat()
	if err != nil {
		return err
	}
	if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: fi.Size()}, bb); err != nil {
		return err
	}
	if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox", Mode: 0o777}, nil); err != nil {
		return err
	}
	// A pool of pseudo-random words; each file is a slice of it from its
	// own offset, so files differ and compress like prose.
	rng := rand.New(rand.NewChaCha8([32]byte{fixtureSeed, 1}))
	words := strings.Fields("layer overlay commit digest manifest tarball rootfs whiteout store cache index blob config step image mount namespace signal unpack squashfs")
	var pool strings.Builder
	for pool.Len() < 1<<20 {
		pool.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			pool.WriteString(".\n")
		} else {
			pool.WriteByte(' ')
		}
	}
	text := pool.String()
	const fileSize = 128 << 10
	files := mib << 20 / fileSize
	for i := range files {
		if i%64 == 0 {
			if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("data/%03d/", i/64), Mode: 0o755}, nil); err != nil {
				return err
			}
		}
		off := rng.IntN(len(text) - fileSize)
		h := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("data/%03d/%04d", i/64, i), Mode: 0o644, Size: fileSize}
		if err := add(h, strings.NewReader(text[off:off+fileSize])); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
