//go:build unix

package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/secrets"
)

const editCanary = "CANARY-edit-5b2c"

// editWorkspace makes a workspace whose development secrets hold the
// canary, and the environment for running envplane in it: TMPDIR is a
// directory of the test's own, so what is left in it is this test's.
func editWorkspace(t *testing.T) (dir, tmp string, env []string) {
	t.Helper()
	if _, err := exec.LookPath("envplane"); err != nil {
		t.Skip("envplane is not on PATH (run through TestMain):", err)
	}
	dir, tmp = t.TempDir(), t.TempDir()
	identity, recipient, err := secrets.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"key.txt":       identity + "\n",
		"envplane.yaml": "environments: [development]\nsecrets:\n  recipients:\n    development: [" + recipient + "]\n",
		"editor.sh":     "echo \"$$ $1\" > \"$MARK.tmp\" && mv \"$MARK.tmp\" \"$MARK\"\nexec sleep 30\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+dir, "XDG_CACHE_HOME="+t.TempDir(), "ENVPLANE_AGE_KEY_FILE="+filepath.Join(dir, "key.txt"),
		"VISUAL=", "EDITOR=sh "+filepath.Join(dir, "editor.sh"))
	run(t, dir, env, "secrets", "set", "--env", "development", "DB_PASSWORD", editCanary)
	return dir, tmp, env
}

func run(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	c := exec.Command("envplane", args...)
	c.Dir, c.Env = dir, env
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("envplane %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startEdit runs `secrets edit` until the editor has the plaintext, and
// returns the process, the editor's PID and the plaintext's path.
func startEdit(t *testing.T, dir string, env []string) (c *exec.Cmd, stderr func() string, editor int, path string) {
	t.Helper()
	mark := filepath.Join(dir, "mark")
	os.Remove(mark)
	c = exec.Command("envplane", "secrets", "edit", "--env", "development")
	// A file, not a buffer: Wait must not wait for an orphaned editor
	// that holds a pipe open.
	errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	stderr = func() string { b, _ := os.ReadFile(errFile.Name()); return string(b) }
	c.Dir, c.Env, c.Stderr = dir, append(env, "MARK="+mark), errFile
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(mark)
		if err == nil {
			pidText, path, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			pid, _ := strconv.Atoi(pidText)
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			plain, err := os.ReadFile(path)
			if err != nil || !strings.Contains(string(plain), editCanary) {
				t.Fatalf("the editor did not get the plaintext: %v", err)
			}
			return c, stderr, pid, path
		}
		if time.Now().After(deadline) {
			t.Fatalf("the editor did not start; stderr:\n%s", stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leftovers lists what envplane left in TMPDIR.
func leftovers(t *testing.T, tmp string) []string {
	t.Helper()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func waitExit(t *testing.T, c *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("envplane did not exit")
		return nil
	}
}

// TestEditSignals: a hangup or termination during `secrets edit` ends the
// editor and the edit, changes nothing, and leaves no plaintext behind.
func TestEditSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir, tmp, env := editWorkspace(t)
			secretsFile := filepath.Join(dir, "secrets", "development.enc.yaml")
			before, err := os.ReadFile(secretsFile)
			if err != nil {
				t.Fatal(err)
			}
			c, stderr, editor, path := startEdit(t, dir, env)
			if !strings.HasPrefix(path, filepath.Join(tmp, secrets.TempDirPrefix+strconv.Itoa(c.Process.Pid)+"-")) {
				t.Errorf("plaintext at %s; want it in %s/%s%d-…", path, tmp, secrets.TempDirPrefix, c.Process.Pid)
			}
			if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("plaintext directory: %v %v; want mode 0700", fi, err)
			}
			if err := c.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = waitExit(t, c)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit: %v; want exit status 2", err)
			}
			if want := fmt.Sprintf("interrupted by %v; nothing changed", sig); !strings.Contains(stderr(), want) {
				t.Errorf("stderr %q; want it to say %q", stderr(), want)
			}
			if left := leftovers(t, tmp); len(left) > 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
			if err := syscall.Kill(editor, 0); err == nil {
				t.Errorf("the editor (pid %d) still runs", editor)
			}
			if after, err := os.ReadFile(secretsFile); err != nil || !bytes.Equal(before, after) {
				t.Errorf("the secrets file changed (%v)", err)
			}
		})
	}
}

// TestEditKilled: SIGKILL cannot be caught, so the plaintext stays until
// the next `secrets edit`, which removes it.
func TestEditKilled(t *testing.T) {
	dir, tmp, env := editWorkspace(t)
	c, _, editor, path := startEdit(t, dir, env)
	c.Process.Kill()
	waitExit(t, c)
	syscall.Kill(editor, syscall.SIGKILL)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the premise: a SIGKILL leaves the plaintext (%v)", err)
	}
	out := run(t, dir, append(env, "EDITOR=true"), "secrets", "edit", "--env", "development")
	if want := "envplane: removed decrypted secrets left by envplane processes that were killed: " + filepath.Dir(path); !strings.Contains(out, want) {
		t.Errorf("output %q; want %q", out, want)
	}
	if left := leftovers(t, tmp); len(left) > 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
