package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/cli"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/vault"
)

// runCLI runs one short CLI command and returns its exit code and output.
func runCLI(getenv map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = cli.Run(context.Background(), args, func(k string) string { return getenv[k] }, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// apiCall sends one request to a server started through the CLI.
func apiCall(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// workspaceDir writes the canary workspace and returns its directory.
func workspaceDir(t *testing.T) string {
	dir := t.TempDir()
	for p, c := range canaryWorkspace() {
		full := filepath.Join(dir, p)
		_ = os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestServeGeneratedMasterKey: with the SQLite default and no key, serve
// generates .envplane/master.key (0600) and warns once; rotate-master-key
// replaces it with no flags; the restarted server reads every secret.
func TestServeGeneratedMasterKey(t *testing.T) {
	t.Chdir(t.TempDir())
	env := map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": adminToken, "ENVPLANE_ADDR": "127.0.0.1:0"}
	ws := workspaceDir(t)
	stop, base := serveCLI(t, env, "serve", "--workspace", ws)
	url, out := base()
	if n := strings.Count(out, "generated the master key"); n != 1 {
		t.Errorf("%d warnings about the generated key, want 1:\n%s", n, out)
	}
	keyPath := filepath.Join(".envplane", vault.KeyFileName)
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key: %v, %v; want mode 0600", err, fi)
	}
	first, _ := os.ReadFile(keyPath)
	if strings.Contains(out, strings.TrimSpace(string(first))) {
		t.Error("the master key is in the server's output")
	}
	// development is the workspace's first environment, made current by --workspace.
	if code, m := apiCall(t, "PUT", url+"/api/v1/environments/development/secrets/DB_PASSWORD", map[string]any{"value": canary}); code != 200 {
		t.Fatalf("PUT: %d %v", code, m)
	}
	code, out := stop()
	if code != 0 {
		t.Fatalf("serve: exit %d: %s", code, out)
	}
	if strings.Contains(out, canary) {
		t.Error("the server's log holds the secret value")
	}

	stop, base = serveCLI(t, env, "serve")
	url, out = base()
	if strings.Contains(out, "generated the master key") {
		t.Errorf("warned again on the second start:\n%s", out)
	}
	if _, m := apiCall(t, "GET", url+"/api/v1/environments/development/secrets/DB_PASSWORD?reveal=true", nil); m["value"] != canary {
		t.Errorf("after restart: %v", m)
	}
	stop()

	code, stdout, stderr := runCLI(nil, "server", "rotate-master-key")
	if code != 0 || !strings.Contains(stdout, "re-wrapped the data keys of 1 environment in .envplane/envplane.db") {
		t.Fatalf("rotate-master-key: exit %d\n%s%s", code, stdout, stderr)
	}
	second, _ := os.ReadFile(keyPath)
	if fi, err := os.Stat(keyPath); err != nil || bytes.Equal(first, second) || fi.Mode().Perm() != 0o600 {
		t.Errorf("master.key after rotation: changed %v, %v, %v; want a new key, mode 0600", !bytes.Equal(first, second), fi, err)
	}
	if _, err := os.Stat(keyPath + ".new"); err == nil {
		t.Error("the pending key file is left behind")
	}
	if strings.Contains(stdout+stderr, strings.TrimSpace(string(second))) {
		t.Error("rotate-master-key printed the key")
	}

	stop, base = serveCLI(t, env, "serve")
	url, _ = base()
	if _, m := apiCall(t, "GET", url+"/api/v1/environments/development/secrets/DB_PASSWORD?reveal=true", nil); m["value"] != canary {
		t.Errorf("after rotation and restart: %v", m)
	}
	stop()
}

// TestRotateMasterKeyFiles: keys managed by the operator, in files.
func TestRotateMasterKeyFiles(t *testing.T) {
	dir := t.TempDir()
	db, oldFile, newFile := filepath.Join(dir, "db", "envplane.db"), filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	k, _ := vault.GenerateMasterKey(nil)
	if err := vault.CreateKeyFile(oldFile, k); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": adminToken, "ENVPLANE_MASTER_KEY_FILE": oldFile}
	stop, base := serveCLI(t, env, "serve", "--addr", "127.0.0.1:0", "--database", db, "--workspace", workspaceDir(t))
	url, out := base()
	if strings.Contains(out, "generated the master key") {
		t.Errorf("a key was generated although one was given: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "db", vault.KeyFileName)); err == nil {
		t.Error("master.key generated next to the database although a key was given")
	}
	apiCall(t, "PUT", url+"/api/v1/environments/development/secrets/A", map[string]any{"value": "a-value"})
	stop()

	if code, _, stderr := runCLI(env, "server", "rotate-master-key", "--database", db); code != 2 || !strings.Contains(stderr, "--new-master-key-file") {
		t.Errorf("rotation without a new key file: exit %d %s", code, stderr)
	}
	code, stdout, stderr := runCLI(env, "server", "rotate-master-key", "--database", db, "--new-master-key-file", newFile)
	if code != 0 || !strings.Contains(stdout, "re-wrapped the data keys of 1 environment") || !strings.Contains(stderr, "wrote a new master key to "+newFile) {
		t.Fatalf("rotate-master-key: exit %d\n%s%s", code, stdout, stderr)
	}
	if fi, err := os.Stat(newFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file: %v", err)
	}

	// The old key no longer starts the server, and says why.
	code, _, stderr = runCLI(env, "serve", "--addr", "127.0.0.1:0", "--database", db)
	if code != 2 || !strings.Contains(stderr, "wrapped by master key") || !strings.Contains(stderr, "--previous-master-key-file") {
		t.Errorf("serve with the old key: exit %d %s", code, stderr)
	}
	stop, base = serveCLI(t, env, "serve", "--addr", "127.0.0.1:0", "--database", db, "--master-key-file", newFile)
	url, _ = base()
	if _, m := apiCall(t, "GET", url+"/api/v1/environments/development/secrets/A?reveal=true", nil); m["value"] != "a-value" {
		t.Errorf("after rotation: %v", m)
	}
	stop()
}

func TestServeMasterKeyErrors(t *testing.T) {
	dir := t.TempDir()
	k, _ := vault.GenerateMasterKey(nil)
	keyFile := filepath.Join(dir, "k")
	vault.CreateKeyFile(keyFile, k)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		// Checked before connecting: no database is needed at this address.
		{nil, []string{"serve", "--database", "postgres://envplane@127.0.0.1:1/none"},
			[]string{"PostgreSQL", "ENVPLANE_MASTER_KEY", "--master-key-file", "every replica"}},
		{map[string]string{"ENVPLANE_MASTER_KEY": "short"}, []string{"serve", "--database", filepath.Join(dir, "a.db")},
			[]string{"ENVPLANE_MASTER_KEY", "base64"}},
		{map[string]string{"ENVPLANE_MASTER_KEY": k.Encode(), "ENVPLANE_MASTER_KEY_FILE": keyFile}, []string{"serve", "--database", filepath.Join(dir, "b.db")},
			[]string{"not both"}},
		{nil, []string{"serve", "--database", filepath.Join(dir, "c.db"), "--master-key-file", filepath.Join(dir, "missing")},
			[]string{"master key file"}},
		{nil, []string{"server", "rotate-master-key", "--database", filepath.Join(dir, "d.db")},
			[]string{"master.key does not exist"}},
	} {
		code, _, stderr := runCLI(c.env, c.args...)
		for _, w := range c.want {
			if code != cli.ExitFailure || !strings.Contains(stderr, w) {
				t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, stderr, w)
			}
		}
		if strings.Contains(stderr, k.Encode()) {
			t.Errorf("%v: the key is in the error", c.args)
		}
	}
}

// TestServePostgresWithMasterKey: replicas given the same key share secrets.
func TestServePostgresWithMasterKey(t *testing.T) {
	u := pgtest.URL(t)
	k, _ := vault.GenerateMasterKey(nil)
	env := map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": adminToken, "ENVPLANE_MASTER_KEY": k.Encode(), "ENVPLANE_DATABASE": u}
	stopA, baseA := serveCLI(t, env, "serve", "--addr", "127.0.0.1:0", "--workspace", workspaceDir(t))
	urlA, _ := baseA()
	stopB, baseB := serveCLI(t, env, "serve", "--addr", "127.0.0.1:0")
	urlB, _ := baseB()
	apiCall(t, "PUT", urlA+"/api/v1/environments/development/secrets/A", map[string]any{"value": "shared"})
	if _, m := apiCall(t, "GET", urlB+"/api/v1/environments/development/secrets/A?reveal=true", nil); m["value"] != "shared" {
		t.Errorf("replica b: %v", m)
	}
	stopA()
	stopB()
	// A replica started with another key refuses to start.
	other, _ := vault.GenerateMasterKey(nil)
	env["ENVPLANE_MASTER_KEY"] = other.Encode()
	if code, _, stderr := runCLI(env, "serve", "--addr", "127.0.0.1:0"); code != 2 || !strings.Contains(stderr, k.ID()) {
		t.Errorf("serve with another key: exit %d %s", code, stderr)
	}
}

// TestInterruptedRotationResumes: a rotation of the generated key that
// stopped after the database commit, before master.key was replaced, still
// serves (both keys are accepted, with a warning) and is finished by
// running the command again.
func TestInterruptedRotationResumes(t *testing.T) {
	t.Chdir(t.TempDir())
	env := map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": adminToken, "ENVPLANE_ADDR": "127.0.0.1:0"}
	stop, base := serveCLI(t, env, "serve", "--workspace", workspaceDir(t))
	url, _ := base()
	apiCall(t, "PUT", url+"/api/v1/environments/development/secrets/A", map[string]any{"value": "a-value"})
	stop()

	keyPath := filepath.Join(".envplane", vault.KeyFileName)
	old, err := vault.ReadKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := vault.GenerateMasterKey(nil)
	if err := vault.CreateKeyFile(keyPath+".new", next); err != nil {
		t.Fatal(err)
	}
	st := mustOpen(t, filepath.Join(".envplane", "envplane.db"))
	if _, err := vault.RotateMaster(context.Background(), st, old, next, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	stop, base = serveCLI(t, env, "serve")
	url, out := base()
	if !strings.Contains(out, "rotation was interrupted") {
		t.Errorf("no warning about the interrupted rotation:\n%s", out)
	}
	if _, m := apiCall(t, "GET", url+"/api/v1/environments/development/secrets/A?reveal=true", nil); m["value"] != "a-value" {
		t.Errorf("during the interrupted rotation: %v", m)
	}
	stop()

	code, stdout, stderr := runCLI(nil, "server", "rotate-master-key")
	if code != 0 || !strings.Contains(stdout, "(1 already under "+next.ID()+")") {
		t.Fatalf("resumed rotation: exit %d\n%s%s", code, stdout, stderr)
	}
	if k, err := vault.ReadKeyFile(keyPath); err != nil || k.ID() != next.ID() {
		t.Errorf("master.key after resuming: %v, %v", k, err)
	}
	if _, err := os.Stat(keyPath + ".new"); err == nil {
		t.Error("master.key.new is left behind")
	}
}
