package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The key hashes the contents of every input file, which in a module like
// strata's own is hundreds of reads and parses per command. A run that
// computed the key leaves beside the driver's entries the stamps of what it
// read; the next run stats those paths and, when every stamp is unchanged,
// takes the key without reading a file. A stamp holds the change time, so
// no edit — even one that keeps the size and sets the modification time
// back — passes for unchanged.

// inputsFile is the name of the stamps file, one per definitions folder,
// in its cache folder beside the entries.
const inputsFile = "inputs.json"

// racyWindow is how close to the computation a file may have changed and
// still be trusted by its stamp. File systems keep times at a clock tick's
// precision (or a second's, or two): a file changed again in the tick it
// was read in would keep its stamp. Git's index has the same problem and
// the same answer: stamps that recent are not trusted.
var racyWindow = 2 * time.Second

// currentKey returns the driver's key for the package in dir, from the
// stamps recorded in folder when they still hold (unless force), and
// otherwise from the files' contents. save records the stamps of a
// computed key: called once the key has served, so that a failing
// compile leaves no record behind.
func currentKey(folder string, ws *workspace, dir string, tool goTool, strataImport string, force bool) (key string, save func(), err error) {
	// The record is valid for the strata that made it only: another may
	// compute keys from other files.
	prefix := append(keyPrefix(ws, dir, tool, strataImport), selfIdentity()...)
	if !force {
		if key, ok := stampedKey(folder, prefix); ok {
			return key, func() {}, nil
		}
	}
	started := time.Now()
	rec := &recorder{}
	key, err = inputKey(ws, dir, tool, strataImport, rec)
	if err != nil {
		return "", nil, err
	}
	return key, func() { saveStamps(folder, prefix, key, rec, started) }, nil
}

// selfIdentity identifies the running program's executable, as goTool
// does the go command.
func selfIdentity() []byte {
	exe, err := os.Executable()
	if err != nil {
		return []byte("unknown\x00")
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return []byte("unknown\x00")
	}
	return fmt.Appendf(nil, "%s\x00%d\x00%d\x00", exe, fi.Size(), fi.ModTime().UnixNano())
}

// fileStamp identifies one state of a file or folder.
type fileStamp struct {
	Path    string
	Missing bool   `json:",omitempty"`
	Dev     uint64 `json:",omitempty"`
	Ino     uint64 `json:",omitempty"`
	Mode    uint32 `json:",omitempty"`
	Size    int64  `json:",omitempty"`
	Mtime   int64  `json:",omitempty"`
	Ctime   int64  `json:",omitempty"`
}

// recorder collects the stamps of what a key computation reads. A nil
// recorder records nothing.
type recorder struct {
	stamps []fileStamp
	failed bool // a path could not be stamped: the record is useless
}

func (r *recorder) note(p string) {
	if r == nil || r.failed {
		return
	}
	s, ok := stampOf(p)
	if !ok {
		r.failed = true
		return
	}
	r.stamps = append(r.stamps, s)
}

// inputIndex is the content of inputsFile.
type inputIndex struct {
	Prefix string // sha256 of keyPrefix
	Key    string
	Files  []fileStamp
}

func prefixDigest(prefix []byte) string {
	sum := sha256.Sum256(prefix)
	return hex.EncodeToString(sum[:])
}

// stampedKey returns the key recorded in folder for prefix when nothing
// it was computed from has changed since.
func stampedKey(folder string, prefix []byte) (string, bool) {
	data, err := os.ReadFile(filepath.Join(folder, inputsFile))
	if err != nil {
		return "", false
	}
	var idx inputIndex
	if json.Unmarshal(data, &idx) != nil || idx.Prefix != prefixDigest(prefix) || idx.Key == "" || len(idx.Files) == 0 {
		return "", false
	}
	for _, want := range idx.Files {
		if got, ok := stampOf(want.Path); !ok || got != want {
			return "", false
		}
	}
	return idx.Key, true
}

// saveStamps records key with the stamps rec took during a computation
// that started at started. Failing to is no error: the next run computes
// the key from contents again.
func saveStamps(folder string, prefix []byte, key string, rec *recorder, started time.Time) {
	if rec == nil || rec.failed || len(rec.stamps) == 0 {
		return
	}
	trusted := started.Add(-racyWindow).UnixNano()
	for _, s := range rec.stamps {
		if s.Mtime >= trusted || s.Ctime >= trusted {
			// An older record stays: its stamps cannot match the files
			// now, since a change time only moves forward.
			return
		}
	}
	data, err := json.Marshal(inputIndex{Prefix: prefixDigest(prefix), Key: key, Files: rec.stamps})
	if err != nil {
		return
	}
	writeAtomic(folder, inputsFile, data)
}

// writeAtomic writes name in folder through a temporary file and a rename,
// so that readers see the old content or the new one, never a part.
// Errors are ignored: everything written this way is a cache.
func writeAtomic(folder, name string, data []byte) {
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(folder, tmpPrefix)
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // as the entries' other files
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(folder, name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
}
