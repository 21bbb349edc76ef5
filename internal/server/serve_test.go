package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/cli"
)

// TestServeCommand runs `envplane serve --workspace examples/arka` as main
// does, with the default database under ./.envplane, and fetches config.
func TestServeCommand(t *testing.T) {
	arka, err := filepath.Abs("../../examples/arka")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	run := func(getenv map[string]string, args ...string) (func() (int, string), func() (string, string)) {
		return serveCLI(t, getenv, args...)
	}

	stop, base := run(map[string]string{"ENVPLANE_ADDR": "127.0.0.1:0"}, "serve", "--workspace", arka)
	url, out := base()
	token := regexp.MustCompile(`envplane: bootstrap admin token: (ep_\w+)\n`).FindStringSubmatch(out)
	if token == nil || !strings.Contains(out, "development now runs release rel_") {
		t.Fatalf("stderr: %s", out)
	}
	get := func(path, tok string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	status, cfg := get("/api/v1/environments/development/config?service=api", token[1])
	if status != 200 || cfg["server"].(map[string]any)["port"] != float64(8080) {
		t.Fatalf("config: %d %v", status, cfg)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if _, err := os.Stat(".envplane/envplane.db"); err != nil {
		t.Fatal(err)
	}

	// A second start on the same database prints no token and keeps the
	// release; ENVPLANE_DATABASE and the flag agree.
	stop, base = run(map[string]string{"ENVPLANE_DATABASE": ".envplane/envplane.db"}, "serve", "--addr", "127.0.0.1:0", "--workspace", arka)
	url, out = base()
	if strings.Contains(out, "bootstrap admin token:") || !strings.Contains(out, "already stored") || !strings.Contains(out, "keeps its current release") {
		t.Fatalf("second start: %s", out)
	}
	if status, _ := get("/api/v1/environments/development/config", token[1]); status != 200 {
		t.Fatalf("config after restart: %d", status)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestServeCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--tls-cert", "x.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"serve", "--database", "mysql://x"}, "use postgres://"},
		{[]string{"serve", "--database", filepath.Join(t.TempDir(), "db"), "--workspace", t.TempDir()}, "envplane.yaml"},
		{[]string{"serve", "extra"}, "unexpected argument"},
	} {
		var stderr strings.Builder
		code := cli.Run(context.Background(), c.args, func(string) string { return "" }, nil, io.Discard, &stderr)
		if code != cli.ExitFailure || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// serveCLI starts `envplane ARGS` in the background; base waits for the
// "serving on" line, stop cancels and returns the exit code and stderr.
func serveCLI(t *testing.T, getenv map[string]string, args ...string) (stop func() (int, string), base func() (string, string)) {
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- cli.Run(ctx, args, func(k string) string { return getenv[k] }, nil, io.Discard, stderr)
	}()
	addr := regexp.MustCompile(`envplane: serving on (http://\S+)`)
	base = func() (string, string) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if m := addr.FindStringSubmatch(stderr.String()); m != nil {
				return m[1], stderr.String()
			}
			select {
			case c := <-code:
				t.Fatalf("serve exited with %d: %s", c, stderr.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
		t.Fatalf("serve did not start: %s", stderr.String())
		return "", ""
	}
	stop = func() (int, string) {
		cancel()
		select {
		case c := <-code:
			return c, stderr.String()
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not stop")
			return 0, ""
		}
	}
	return stop, base
}

// TestServeWorkspaceFiles uploads envplane.yaml and the files it
// references, as `envplane release create` does: nothing else the directory
// holds (.env.local holds plaintext secrets), hidden layer files included.
func TestServeWorkspaceFiles(t *testing.T) {
	dir := t.TempDir()
	for p, c := range map[string]string{
		"envplane.yaml":  "environments:\n  - name: dev\nconfig:\n  layers: [config.yaml, .env]\n",
		"config.yaml":    "port: 1\n",
		".env":           "PORT=2\n",
		".env.local":     "PASSWORD=hunter2\n",
		".git/config":    "[core]\n",
		"docs/readme.md": "hello\n",
	} {
		full := filepath.Join(dir, p)
		_ = os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop, base := serveCLI(t, map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": adminToken},
		"serve", "--addr", "127.0.0.1:0", "--database", filepath.Join(t.TempDir(), "db"), "--workspace", dir)
	url, out := base()
	if strings.Contains(out, "bootstrap admin token:") {
		t.Errorf("a given bootstrap token was printed: %s", out)
	}
	id := regexp.MustCompile(`release (rel_\w+)`).FindStringSubmatch(out)
	req, _ := http.NewRequest("GET", url+"/api/v1/releases/"+id[1], nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rel struct {
		Files map[string]string `json:"files"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&rel)
	resp.Body.Close()
	var names []string
	for p := range rel.Files {
		names = append(names, p)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{".env", "config.yaml", "envplane.yaml"}, names); diff != "" {
		t.Errorf("uploaded files (-want +got):\n%s", diff)
	}
	if code, out := stop(); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
}
