//go:build unix

package sqlite

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/envplane/envplane/internal/errs"
)

// fileLock is the exclusive lock one Store holds on its database for its
// lifetime: two servers on one SQLite file would each keep serving their own
// in-memory view while the other writes, so the second one must not start.
type fileLock struct{ f *os.File }

// lockDatabase takes the lock file beside the database (path + ".lock") and
// records this process's ID in it. The kernel releases a flock when its
// holder exits, however it exits, so a crash never leaves a stale lock.
func lockDatabase(path string) (*fileLock, error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "sqlite: open the lock file %s", lockPath)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		holder := ""
		if b, rerr := os.ReadFile(lockPath); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = " (pid " + strconv.Itoa(pid) + ")"
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errs.E(errs.Conflict, "sqlite: another envplane server%s holds the database %s: "+
				"one SQLite file serves one process; stop that server first (or use PostgreSQL to run several replicas)", holder, path)
		}
		return nil, errs.Wrap(errs.Unavailable, err, "sqlite: lock %s", lockPath)
	}
	// Best effort: the pid only makes the message above more helpful.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// release drops the lock. The file stays: removing it could let a third
// process lock a fresh file while a second still holds the old one.
func (l *fileLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
