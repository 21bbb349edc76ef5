package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MkdirPrivateTemp creates a directory only its owner may enter (0700) in
// base (the system's temporary directory when base is ""), named
// PREFIX-PID-RANDOM after the calling process.
func MkdirPrivateTemp(base, prefix string) (string, error) {
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, prefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o700); err != nil { // MkdirTemp's mode already; said here
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// RemoveStaleTempDirs removes the PREFIX-PID-* directories in base (the
// system's temporary directory when "") whose process is no longer running,
// as alive tells (nil: ask the operating system), and returns their paths.
// Directories of running processes, of other users, and anything that is
// not a directory are left alone.
func RemoveStaleTempDirs(base, prefix string, alive func(pid int) bool) ([]string, error) {
	if base == "" {
		base = os.TempDir()
	}
	if alive == nil {
		alive = ProcessAlive
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var removed []string
	var problems []error
	for _, e := range entries {
		pid, ok := ownerPID(e.Name(), prefix)
		if !ok || !e.IsDir() || pid == os.Getpid() || alive(pid) {
			continue
		}
		path := filepath.Join(base, e.Name())
		if fi, err := os.Lstat(path); err != nil || !fi.IsDir() || !ownedByMe(fi) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			problems = append(problems, err)
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(problems...)
}

// ownerPID reads the PID from a name PREFIX + PID + "-" + RANDOM.
func ownerPID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	return pid, err == nil && pid > 0
}

// tmpPrefix starts the temporary files WriteFile makes next to path.
func tmpPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// legacyTmpAge is how old a temporary file without a PID in its name (as
// envplane wrote them before) must be to count as abandoned.
const legacyTmpAge = 10 * time.Minute

// removeStaleTmp removes the temporary files that writes of path by
// processes no longer running left in dir.
func removeStaleTmp(dir, path string, alive func(int) bool) {
	prefix := tmpPrefix(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !e.Type().IsRegular() {
			continue
		}
		if pid, ok := ownerPID(name, prefix); ok {
			if pid == os.Getpid() || alive(pid) {
				continue
			}
		} else if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < legacyTmpAge {
			continue
		}
		os.Remove(filepath.Join(dir, name))
	}
}

func tmpPattern(path string) string {
	return fmt.Sprintf("%s%d-*", tmpPrefix(path), os.Getpid())
}
