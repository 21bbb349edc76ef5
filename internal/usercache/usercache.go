// Package usercache remembers small facts between runs of the CLI in the
// user's cache directory: that this binary has already compiled a schema or
// a set of policies with these exact bytes without error, so a later run
// may skip the checks that are known to pass (docs/PERFORMANCE.md §8).
//
// Entries are keyed by the binary (its build information, path, size and
// modification time) and by a digest of the content the caller names, and
// hold only digests: no file content, never a secret. The cache is
// best-effort: every error reads as a miss or a write not made, an entry is
// checked against its own checksum on every read (a torn or altered file is
// a miss), and writers never share a half-written file (write to a temporary
// file, then rename), so concurrent processes are safe.
package usercache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Dir is a cache directory for one binary. The zero of *Dir (nil) is a
// cache that remembers nothing.
type Dir struct {
	root string // …/envplane
	once sync.Once
	dir  string // root/<binary id>, "" when the binary cannot be identified
}

const (
	magic = "envplane-cache 1\n"
	// stale is how long the entries of other builds are kept after this
	// build first writes: old builds' directories are removed then.
	stale = 7 * 24 * time.Hour
)

// Open returns the cache under the user's cache directory, found through
// getenv as os.UserCacheDir does, or nil when there is none.
func Open(getenv func(string) string) *Dir {
	base := userCacheDir(getenv)
	if base == "" || !filepath.IsAbs(base) {
		return nil
	}
	return &Dir{root: filepath.Join(base, "envplane")}
}

// userCacheDir is os.UserCacheDir with the environment passed in.
func userCacheDir(getenv func(string) string) string {
	switch runtime.GOOS {
	case "windows":
		return getenv("LocalAppData")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Caches")
		}
		return ""
	case "plan9":
		if h := getenv("home"); h != "" {
			return filepath.Join(h, "lib", "cache")
		}
		return ""
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return d
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache")
	}
	return ""
}

// binDir is the directory of this binary's entries.
func (d *Dir) binDir() string {
	d.once.Do(func() {
		id := binaryID()
		if id != "" {
			d.dir = filepath.Join(d.root, id)
		}
	})
	return d.dir
}

// binaryID names this build: a change of code, dependencies, toolchain,
// flags or of the executable file gives another name.
func binaryID() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	st, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	h := sha256.New()
	if bi, ok := debug.ReadBuildInfo(); ok {
		h.Write([]byte(bi.String()))
	}
	h.Write([]byte("\x00" + exe + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// file is where key's entry lives.
func (d *Dir) file(key string) string {
	dir := d.binDir()
	if dir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(dir, hex.EncodeToString(sum[:16]))
}

// checksum binds an entry's value to its key.
func checksum(key string, value []byte) string {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns the value stored for key by this binary.
func (d *Dir) Get(key string) ([]byte, bool) {
	if d == nil {
		return nil, false
	}
	name := d.file(key)
	if name == "" {
		return nil, false
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, false
	}
	rest, ok := bytes.CutPrefix(data, []byte(magic))
	if !ok {
		return nil, false
	}
	sum, value, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || string(sum) != checksum(key, value) {
		return nil, false
	}
	return value, true
}

// Put stores value for key, replacing what was there.
func (d *Dir) Put(key string, value []byte) {
	if d == nil {
		return
	}
	name := d.file(key)
	if name == "" {
		return
	}
	dir := filepath.Dir(name)
	if _, err := os.Stat(dir); err != nil {
		if os.MkdirAll(dir, 0o700) != nil {
			return
		}
		d.prune()
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write([]byte(magic + checksum(key, value) + "\n" + string(value)))
	if cerr := f.Close(); werr != nil || cerr != nil || os.Rename(f.Name(), name) != nil {
		os.Remove(f.Name())
	}
}

// prune removes the entries of other builds not written to for a while;
// it runs when a build writes its first entry.
func (d *Dir) prune() {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(d.root, e.Name())
		if !e.IsDir() || p == d.dir {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > stale {
			os.RemoveAll(p)
		}
	}
}
