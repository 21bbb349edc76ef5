// Package fsutil writes files so that a reader or a crash sees the old file
// or the new one, never part of one, and cleans up after writers that were
// killed: temporary files and private temporary directories are named after
// the process that made them, so a later run can tell an abandoned one (its
// process is gone) from one in use. Secrets files, identities, the master
// key and audit checkpoints are all written through it.
package fsutil

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with data atomically: it writes a
// temporary file in the same directory, syncs it and renames it over path,
// so a reader or a crash sees the old file or the new one, never part of
// one. A new file gets mode perm (0600 for secrets and identities); an
// existing one keeps its mode. When path already holds exactly data, the
// file is left alone (its modification time too). A symbolic link at path
// is followed: its target is replaced, the link stays. Temporary files of
// earlier writes whose process has died (killed between create and rename)
// are removed.
func WriteFile(path string, data []byte, perm fs.FileMode) (err error) {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	dir := filepath.Dir(path)
	// A write killed before its rename (SIGKILL, power loss) leaves its
	// temporary file behind; the next write removes it.
	removeStaleTmp(dir, path, ProcessAlive)
	mode := perm.Perm()
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return &fs.PathError{Op: "write", Path: path, Err: errors.New("not a regular file")}
		}
		mode = st.Mode().Perm()
		if st.Size() == int64(len(data)) {
			if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
				return nil
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	return place(path, data, mode, os.Rename)
}

// CreateFile writes data to a new file at path (mode perm) whole or not at
// all, and never replaces a file another process created meanwhile: the
// temporary file is hard-linked into place, which fails when path exists.
func CreateFile(path string, data []byte, perm fs.FileMode) error {
	removeStaleTmp(filepath.Dir(path), path, ProcessAlive)
	return place(path, data, perm.Perm(), os.Link)
}

// place writes data to a temporary file beside path (mode perm), syncs it,
// and puts it at path with put (rename or link), durably.
func place(path string, data []byte, perm fs.FileMode, put func(oldpath, newpath string) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tmpPattern(path))
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // after a rename, nothing is there any more
	}()
	// CreateTemp makes the file 0600 already; Chmod sets the mode asked
	// for before any data is in it.
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = put(tmp.Name(), path); err != nil {
		return err
	}
	// Make the new name durable; not every system can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
