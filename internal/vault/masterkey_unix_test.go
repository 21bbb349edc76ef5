//go:build unix

package vault_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/vault"
)

// TestKeyFileMode: like ssh, a key file that group or others may access is
// refused with the chmod that fixes it; generated key files are 0600.
func TestKeyFileMode(t *testing.T) {
	k := key(t, 5)
	dir := t.TempDir()
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"owner read-write", 0o600, true},
		{"owner read-only", 0o400, true},
		{"world-readable", 0o644, false},
		{"group-readable", 0o640, false},
		{"group-writable", 0o620, false},
		{"others-executable", 0o601, false},
		{"dir with a space", 0o644, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name, "master.key")
			if err := vault.CreateKeyFile(path, k); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			for what, load := range map[string]func() error{
				"ReadKeyFile": func() error { _, err := vault.ReadKeyFile(path); return err },
				"Load(File)":  func() error { _, err := vault.Load(t.Context(), vault.Source{File: path}); return err },
				"Load(DataDir)": func() error {
					_, err := vault.Load(t.Context(), vault.Source{DataDir: filepath.Dir(path)})
					return err
				},
			} {
				err := load()
				if tt.ok {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
					continue
				}
				quoted := path
				if strings.Contains(path, " ") {
					quoted = "'" + path + "'"
				}
				want := fmt.Sprintf("master key file %s is accessible by group or others (mode %04o); a master key must be private to the server's user: run `chmod 600 %s`", path, tt.mode, quoted)
				if err == nil || err.Error() != want || !errs.Is(err, errs.Invalid) {
					t.Errorf("%s = %v\nwant %s", what, err, want)
				}
				if err != nil && strings.Contains(err.Error(), k.Encode()) {
					t.Errorf("%s: the error holds the key", what)
				}
			}
		})
	}

	// Generated and replaced key files are 0600 even under a permissive umask.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, write := range []func(string, *vault.MasterKey) error{vault.CreateKeyFile, vault.ReplaceKeyFile} {
		path := filepath.Join(t.TempDir(), "k")
		if err := write(path, k); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("written key file: %v %v; want mode 0600", fi, err)
		}
	}
}
