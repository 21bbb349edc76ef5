//go:build unix

package fsutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testPrefix names the test's private directories.
const testPrefix = "envplane-secrets-"

// deadPID is the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	return c.Process.Pid
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func TestMkdirPrivateTemp(t *testing.T) {
	base := t.TempDir()
	dir, err := MkdirPrivateTemp(base, testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("%s: %v %v; want a 0700 directory", dir, fi, err)
	}
	if want := testPrefix + strconv.Itoa(os.Getpid()) + "-"; !strings.HasPrefix(filepath.Base(dir), want) || filepath.Dir(dir) != base {
		t.Errorf("dir %s; want %s/%s…", dir, base, want)
	}
	// Our own directory is never stale.
	if removed, err := RemoveStaleTempDirs(base, testPrefix, nil); err != nil || len(removed) != 0 {
		t.Errorf("RemoveStaleTempDirs removed %v, %v", removed, err)
	}
}

// TestRemoveStaleTempDirs: only directories of dead processes go, with the
// plaintext inside them.
func TestRemoveStaleTempDirs(t *testing.T) {
	base := t.TempDir()
	other := t.TempDir()
	mkdir := func(name string) {
		if err := os.MkdirAll(filepath.Join(base, name, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, name, "production.env"), []byte("DB=CANARY\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mine := strconv.Itoa(os.Getpid())
	mkdir("envplane-secrets-111-aaa")                                          // dead: removed
	mkdir("envplane-secrets-112-bbb")                                          // dead: removed
	mkdir("envplane-secrets-222-ccc")                                          // alive: kept
	mkdir("envplane-secrets-" + mine + "-ddd")                                 // this process: kept
	mkdir("envplane-secrets-notapid")                                          // not ours: kept
	mkdir("envplane-secrets--1-x")                                             // not a PID: kept
	mkdir("other-111-x")                                                       // not ours: kept
	os.WriteFile(filepath.Join(base, "envplane-secrets-333-file"), nil, 0o600) // not a directory: kept
	os.Symlink(other, filepath.Join(base, "envplane-secrets-444-link"))        // a link: kept, its target untouched
	os.WriteFile(filepath.Join(other, "keep"), nil, 0o600)

	var asked []int
	removed, err := RemoveStaleTempDirs(base, testPrefix, func(pid int) bool { asked = append(asked, pid); return pid == 222 })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(base, "envplane-secrets-111-aaa"), filepath.Join(base, "envplane-secrets-112-bbb")}
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	wantLeft := []string{"envplane-secrets--1-x", "envplane-secrets-222-ccc", "envplane-secrets-333-file", "envplane-secrets-444-link",
		"envplane-secrets-" + mine + "-ddd", "envplane-secrets-notapid", "other-111-x"}
	slices.Sort(wantLeft)
	if diff := cmp.Diff(wantLeft, names(t, base)); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Errorf("the link's target was touched: %v", err)
	}

	// The real liveness check: a finished process is dead, this one alive.
	if dead := deadPID(t); ProcessAlive(dead) {
		t.Errorf("ProcessAlive(%d) of an exited process = true", dead)
	}
	if !ProcessAlive(os.Getpid()) {
		t.Error("ProcessAlive(self) = false")
	}
}

// TestWriteFileRemovesStaleTmp: the temporary file of a write that was
// killed before its rename goes with the next write; those of live writes,
// of other files and fresh ones of the old naming stay.
func TestWriteFileRemovesStaleTmp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "staging.enc.yaml")
	dead := strconv.Itoa(deadPID(t))
	mine := strconv.Itoa(os.Getpid())
	files := map[string]time.Duration{
		".staging.enc.yaml.tmp-" + dead + "-123":  0,          // killed writer: removed
		".staging.enc.yaml.tmp-" + mine + "-456":  0,          // this process: kept
		".staging.enc.yaml.tmp-98765":             -time.Hour, // old naming, old: removed
		".staging.enc.yaml.tmp-43210":             0,          // old naming, fresh: kept
		".production.enc.yaml.tmp-" + dead + "-1": 0,          // another file's: kept
	}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("DB: ENC[...]"), 0o600); err != nil {
			t.Fatal(err)
		}
		if age != 0 {
			os.Chtimes(p, time.Now().Add(age), time.Now().Add(age))
		}
	}
	if err := WriteFile(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{".production.enc.yaml.tmp-" + dead + "-1", ".staging.enc.yaml.tmp-43210", ".staging.enc.yaml.tmp-" + mine + "-456", "staging.enc.yaml"}
	slices.Sort(want)
	if diff := cmp.Diff(want, names(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}
