package secrets

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
	removeStaleTmp(dir, path, processAlive)
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

	tmp, err := os.CreateTemp(dir, tmpPattern(path))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600 already; Chmod sets the mode kept from
	// the old file before any data is in it.
	if err = tmp.Chmod(mode); err != nil {
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
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable; not every system can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
