package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "staging.enc.yaml")

	if err := WriteFile(p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile := func(want string, mode fs.FileMode) {
		t.Helper()
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("file holds %q (%v), want %q", got, err, want)
		}
		if runtime.GOOS != "windows" {
			if st, _ := os.Stat(p); st.Mode().Perm() != mode {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), mode)
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file left behind: %s", e.Name())
			}
		}
	}
	checkFile("one\n", 0o600)

	// An existing file keeps its mode.
	os.Chmod(p, 0o640)
	if err := WriteFile(p, []byte("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile("two\n", 0o640)

	// The same content again leaves the file alone.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(p, old, old)
	if err := WriteFile(p, []byte("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); !st.ModTime().Equal(old) {
		t.Error("an unchanged file was rewritten")
	}

	// A symbolic link is followed; it stays a link.
	if runtime.GOOS != "windows" {
		link := filepath.Join(dir, "link.enc.yaml")
		if err := os.Symlink(p, link); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(link, []byte("three\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		checkFile("three\n", 0o640)
		if st, _ := os.Lstat(link); st.Mode()&fs.ModeSymlink == 0 {
			t.Error("the link was replaced by a file")
		}
	}

	// A failed write leaves the old file whole and no temporary file.
	if err := WriteFile(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	if err := WriteFile(dir, []byte("x"), 0o600); err == nil {
		t.Error("write over a directory succeeded")
	}
	checkFile("three\n", 0o640)
}
