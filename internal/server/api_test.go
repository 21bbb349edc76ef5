package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/cli"
	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store"
)

// apiCase is one request and what must come back: a status and, for
// errors, the error code and the fields named.
type apiCase struct {
	name       string
	method     string
	path       string
	token      string // default adminToken
	body       any
	headers    []string
	status     int
	code       string   // error code, for error statuses
	fields     []string // error fields, in order
	check      func(t *testing.T, r response)
	bodyString string // substring the body must contain
}

func runCases(t *testing.T, h *harness, cases []apiCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := c.token
			if token == "" {
				token = adminToken
			} else if token == "-" {
				token = ""
			}
			hh := *h
			hh.t = t
			r := hh.call(c.method, c.path, token, c.body, c.headers...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d\n%s", r.status, c.status, r.body)
			}
			if c.status >= 400 {
				e := r.err(t)
				if c.code != "" && e.Code != c.code {
					t.Errorf("code %q, want %q (%s)", e.Code, c.code, e.Message)
				}
				if c.fields != nil {
					if diff := cmp.Diff(c.fields, e.fieldNames()); diff != "" {
						t.Errorf("fields (-want +got):\n%s\n%s", diff, r.body)
					}
				}
			}
			if c.bodyString != "" && !bytes.Contains(r.body, []byte(c.bodyString)) {
				t.Errorf("body lacks %q:\n%s", c.bodyString, r.body)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func TestReleases(t *testing.T) {
	h := start(t)
	first := h.must(http.StatusCreated, "POST", "/api/v1/releases", adminToken,
		map[string]any{"files": shop(8080), "labels": map[string]string{"git.sha": "abc123"}}).json(t)
	id := first["id"].(string)
	if !strings.HasPrefix(id, "rel_") || !strings.HasPrefix(first["digest"].(string), "sha256:") || first["createdAt"] == nil {
		t.Fatalf("201 body: %v", first)
	}
	broken := map[string]string{
		"envplane.yaml": "environments:\n  - name: dev\n    data: made-up\n    protection: open\n  - name: dev\n    protection: nope\nbogus: 1\n",
	}
	cases := []apiCase{
		{name: "same digest answers 200 with the same release", method: "POST", path: "/api/v1/releases",
			body: map[string]any{"files": shop(8080)}, status: 200,
			check: func(t *testing.T, r response) {
				if m := r.json(t); m["id"] != id || m["digest"] != first["digest"] {
					t.Errorf("got %v, want release %s", m, id)
				}
			}},
		{name: "files missing", method: "POST", path: "/api/v1/releases", body: map[string]any{"labels": map[string]string{}},
			status: 400, code: "invalid", fields: []string{"files"}},
		{name: "unknown field", method: "POST", path: "/api/v1/releases", body: map[string]any{"files": shop(1), "extra": 1},
			status: 400, code: "invalid", fields: []string{"extra"}},
		{name: "files of the wrong type", method: "POST", path: "/api/v1/releases", body: `{"files":["envplane.yaml"]}`,
			status: 400, code: "invalid", fields: []string{"files"}},
		{name: "not JSON", method: "POST", path: "/api/v1/releases", body: `{"files":`, status: 400, code: "invalid", fields: []string{"body"}},
		{name: "two objects", method: "POST", path: "/api/v1/releases", body: `{"files":{}} {}`, status: 400, fields: []string{"body"}},
		{name: "empty body", method: "POST", path: "/api/v1/releases", body: ``, status: 400, fields: []string{"body"}},
		{name: "bad paths and labels, all reported", method: "POST", path: "/api/v1/releases",
			body: map[string]any{"files": map[string]string{"envplane.yaml": "x", "../etc/passwd": "x", "/abs": "x"},
				"labels": map[string]string{"-bad": "v", "ok": strings.Repeat("v", 300)}},
			status: 400, code: "invalid", fields: []string{"labels.-bad", "labels.ok", "files.../etc/passwd", "files./abs"}},
		{name: "paths outside the workspace", method: "POST", path: "/api/v1/releases",
			body:   map[string]any{"files": map[string]string{"envplane.yaml": "x", "../etc/passwd": "x", "/abs": "x"}},
			status: 400, code: "invalid", fields: []string{"files.../etc/passwd", "files./abs"}},
		{name: "a workspace that does not load: every loader error", method: "POST", path: "/api/v1/releases",
			body: map[string]any{"files": broken}, status: 400, code: "invalid",
			check: func(t *testing.T, r response) {
				e := r.err(t)
				if len(e.Fields) < 3 {
					t.Fatalf("want every problem (at least 3), got %d: %s", len(e.Fields), r.body)
				}
				for _, f := range e.Fields {
					if f.Field != "files.envplane.yaml" || !strings.HasPrefix(f.Message, "envplane.yaml:") {
						t.Errorf("field %s: %s", f.Field, f.Message)
					}
				}
			}},
		{name: "a layer that does not parse", method: "POST", path: "/api/v1/releases",
			body: map[string]any{"files": func() map[string]string {
				f := shop(1)
				f["config/default.yaml"] = "server: [unclosed\n"
				f["config/api.yaml"] = "a: b: c\n"
				return f
			}()}, status: 400, code: "invalid", fields: []string{"files.config/api.yaml", "files.config/default.yaml"}},
		{name: "list", method: "GET", path: "/api/v1/releases", status: 200,
			check: func(t *testing.T, r response) {
				var b struct {
					Releases []map[string]any `json:"releases"`
				}
				_ = json.Unmarshal(r.body, &b)
				if len(b.Releases) != 1 || b.Releases[0]["id"] != id || b.Releases[0]["files"] != nil {
					t.Errorf("list: %s", r.body)
				}
				if b.Releases[0]["labels"].(map[string]any)["git.sha"] != "abc123" {
					t.Errorf("labels lost: %s", r.body)
				}
			}},
		{name: "list with a bad limit", method: "GET", path: "/api/v1/releases?limit=0", status: 400, fields: []string{"limit"}},
		{name: "get one with its files", method: "GET", path: "/api/v1/releases/" + id, status: 200,
			check: func(t *testing.T, r response) {
				var b struct {
					Files map[string]string `json:"files"`
				}
				_ = json.Unmarshal(r.body, &b)
				if diff := cmp.Diff(shop(8080), b.Files); diff != "" {
					t.Errorf("files (-want +got):\n%s", diff)
				}
			}},
		{name: "unknown release", method: "GET", path: "/api/v1/releases/rel_0000000000000000", status: 404, code: "not_found"},
	}
	runCases(t, h, cases)
}

func TestOversizedBodies(t *testing.T) {
	h := start(t, func(o *server.Options) { o.MaxBodyBytes = 4096 })
	big := map[string]any{"files": map[string]string{"envplane.yaml": strings.Repeat("x", 8000)}}
	r := h.must(http.StatusRequestEntityTooLarge, "POST", "/api/v1/releases", adminToken, big)
	if e := r.err(t); e.Code != "too_large" {
		t.Errorf("code %q", e.Code)
	}
	// Without a Content-Length the limit is met while reading.
	data, _ := json.Marshal(big)
	req, _ := http.NewRequest("POST", h.hs.URL+"/api/v1/releases", struct{ *bytes.Reader }{bytes.NewReader(data)})
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.ContentLength == 0 {
		t.Errorf("chunked upload: status %d", resp.StatusCode)
	}
	// Other bodies are bounded too.
	h.must(http.StatusRequestEntityTooLarge, "POST", "/api/v1/tokens", adminToken,
		map[string]any{"name": strings.Repeat("n", 5000), "role": "viewer"})
}

func TestEnvironments(t *testing.T) {
	h := start(t)
	id := h.upload(shop(8080))
	other := h.upload(map[string]string{"envplane.yaml": "environments:\n  - name: qa\n"})
	r := h.must(200, "GET", "/api/v1/environments", adminToken, nil)
	var list struct {
		Environments []struct {
			Name, Protection, Data string
			Release                *string
			Promoted               bool
		} `json:"environments"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list.Environments {
		names = append(names, e.Name)
		if e.Release != nil {
			t.Errorf("%s has release %s before any was set", e.Name, *e.Release)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"development", "production", "qa", "staging"}, names); diff != "" {
		t.Errorf("environments (-want +got):\n%s", diff)
	}
	if list.Environments[0].Protection == "" || list.Environments[0].Data == "" {
		t.Errorf("definition missing: %s", r.body)
	}

	put := func(env string) string { return "/api/v1/environments/" + env + "/release" }
	cases := []apiCase{
		{name: "set", method: "PUT", path: put("development"), body: map[string]string{"release": id}, status: 200,
			check: func(t *testing.T, r response) {
				if diff := cmp.Diff(map[string]any{"environment": "development", "release": id, "previous": ""}, r.json(t)); diff != "" {
					t.Error(diff)
				}
			}},
		{name: "set again changes nothing", method: "PUT", path: put("development"), body: map[string]string{"release": id}, status: 200},
		{name: "release missing", method: "PUT", path: put("development"), body: map[string]string{}, status: 400, fields: []string{"release"}},
		{name: "release of the wrong type", method: "PUT", path: put("development"), body: `{"release":1}`, status: 400, fields: []string{"release"}},
		{name: "unknown field", method: "PUT", path: put("development"), body: `{"release":"x","force":true}`, status: 400, fields: []string{"force"}},
		{name: "unknown environment", method: "PUT", path: put("nope"), body: map[string]string{"release": id}, status: 404, code: "not_found"},
		{name: "unknown release", method: "PUT", path: put("development"), body: map[string]string{"release": "rel_0000000000000000"}, status: 404, code: "not_found"},
		{name: "promotion-only environment", method: "PUT", path: put("production"), body: map[string]string{"release": id}, status: 409, code: "conflict"},
		{name: "release without the environment", method: "PUT", path: put("staging"), body: map[string]string{"release": other}, status: 400, fields: []string{"release"}},
		{name: "listed with its release", method: "GET", path: "/api/v1/environments", status: 200, bodyString: `"release":"` + id + `"`},
	}
	runCases(t, h, cases)
	// Environments persist: a later release without staging leaves it known.
	h.must(200, "GET", "/api/v1/environments", adminToken, nil)
	if !bytes.Contains(h.must(200, "GET", "/api/v1/environments", adminToken, nil).body, []byte(`"name":"staging"`)) {
		t.Error("staging was forgotten")
	}
}

func TestConfig(t *testing.T) {
	h, _ := seeded(t)
	viewer, _ := h.token("viewer", "viewer")
	sdk, _ := h.token("app", "sdk", "development")
	cfg := "/api/v1/environments/development/config"
	var etag string
	cases := []apiCase{
		{name: "redacted by default", method: "GET", path: cfg, status: 200,
			check: func(t *testing.T, r response) {
				m := r.json(t)
				if got := m["database"].(map[string]any)["password"]; got != "<redacted>" {
					t.Errorf("password = %v", got)
				}
				if m["logging"].(map[string]any)["level"] != "info" {
					t.Errorf("layers not merged: %s", r.body)
				}
				etag = r.header.Get("ETag")
				if !strings.HasPrefix(etag, `"`) || r.header.Get("Cache-Control") != "private, no-cache" || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("headers: %v", r.header)
				}
			}},
		{name: "service layers", method: "GET", path: cfg + "?service=api", status: 200, bodyString: `"port": 9000`},
		{name: "admin reveals", method: "GET", path: cfg + "?reveal=true", status: 200, bodyString: `"password": "dev-secret-pass"`,
			check: func(t *testing.T, r response) {
				if r.header.Get("Cache-Control") != "no-store" {
					t.Errorf("revealed config is cacheable: %v", r.header)
				}
			}},
		{name: "sdk key of the environment reveals", method: "GET", path: cfg + "?reveal=true", token: sdk, status: 200, bodyString: `"password": "dev-secret-pass"`},
		{name: "viewer asking to reveal still gets redacted", method: "GET", path: cfg + "?reveal=true", token: viewer, status: 200, bodyString: `"password": "<redacted>"`},
		{name: "bad reveal", method: "GET", path: cfg + "?reveal=maybe", status: 400, fields: []string{"reveal"}},
		{name: "unknown service", method: "GET", path: cfg + "?service=nope", status: 400, fields: []string{"service"}},
		{name: "unknown environment", method: "GET", path: "/api/v1/environments/nope/config", status: 404, code: "not_found"},
		{name: "no release yet", method: "GET", path: "/api/v1/environments/production/config", status: 404, code: "not_found"},
		{name: "unresolved references: 409 with every problem", method: "GET", path: "/api/v1/environments/staging/config", status: 409, code: "conflict",
			fields: []string{"config.database.host", "config.database.password"},
			check: func(t *testing.T, r response) {
				for _, f := range r.err(t).Fields {
					if !strings.HasPrefix(f.Message, "config/staging.yaml:") {
						t.Errorf("problem without its place: %s", f.Message)
					}
				}
				if bytes.Contains(r.body, []byte("dev-secret-pass")) {
					t.Error("secret in an error body")
				}
			}},
	}
	runCases(t, h, cases)

	// ETag and If-None-Match.
	runCases(t, h, []apiCase{
		{name: "304 for the current ETag", method: "GET", path: cfg, headers: []string{"If-None-Match", etag}, status: 304,
			check: func(t *testing.T, r response) {
				if len(r.body) != 0 || r.header.Get("ETag") != etag {
					t.Errorf("304 with body %q or ETag %q", r.body, r.header.Get("ETag"))
				}
			}},
		{name: "304 for a weak match in a list", method: "GET", path: cfg, headers: []string{"If-None-Match", `"other", W/` + etag}, status: 304},
		{name: "304 for *", method: "GET", path: cfg, headers: []string{"If-None-Match", "*"}, status: 304},
		{name: "200 for another ETag", method: "GET", path: cfg, headers: []string{"If-None-Match", `"stale"`}, status: 200},
		{name: "revealed config has its own ETag", method: "GET", path: cfg + "?reveal=true", headers: []string{"If-None-Match", etag}, status: 200},
	})

	// A new release changes the ETag; the same content keeps it.
	id2 := h.upload(shop(8081))
	h.setRelease("development", id2)
	r := h.must(200, "GET", cfg, adminToken, nil, "If-None-Match", etag)
	if r.header.Get("ETag") == etag || !bytes.Contains(r.body, []byte(`"port": 8081`)) {
		t.Errorf("after a new release: ETag %s, body %s", r.header.Get("ETag"), r.body)
	}
}

// cliJSON runs the envplane CLI on files written to a temporary workspace.
func cliJSON(t *testing.T, files map[string]string, args ...string) any {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"-C", dir}, args...), func(string) string { return "" }, nil, &out, &errOut)
	if code > 1 {
		t.Fatalf("envplane %v: exit %d: %s", args, code, errOut.String())
	}
	var v any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExplainAndDiff(t *testing.T) {
	h, _ := seeded(t)
	stagingOnly, _ := h.token("staging viewer", "viewer", "staging")
	base := "/api/v1/environments/development/"
	sameAsCLI := func(args ...string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var got any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(cliJSON(t, shop(8080), args...), got); diff != "" {
				t.Errorf("differs from `envplane %s` (-cli +server):\n%s", strings.Join(args, " "), diff)
			}
		}
	}
	runCases(t, h, []apiCase{
		{name: "explain like the CLI", method: "GET", path: base + "explain?key=server.port&service=api", status: 200,
			check: sameAsCLI("explain", "server.port", "--env", "development", "--service", "api", "--format", "json")},
		{name: "explain redacts", method: "GET", path: base + "explain?key=database.password", status: 200,
			check: sameAsCLI("explain", "database.password", "--env", "development", "--format", "json")},
		{name: "explain reveals for admins", method: "GET", path: base + "explain?key=database.password&reveal=true", status: 200, bodyString: "dev-secret-pass"},
		{name: "explain an unresolved reference", method: "GET", path: "/api/v1/environments/staging/explain?key=database.host", status: 200, bodyString: `"unresolved":true`},
		{name: "explain without key", method: "GET", path: base + "explain", status: 400, fields: []string{"key"}},
		{name: "explain a bad reveal and no key", method: "GET", path: base + "explain?reveal=x", status: 400, fields: []string{"key", "reveal"}},
		{name: "explain an unset key", method: "GET", path: base + "explain?key=nope.nothing", status: 404, code: "not_found"},
		{name: "explain in an unknown environment", method: "GET", path: "/api/v1/environments/nope/explain?key=a", status: 404},
		{name: "explain an unknown service", method: "GET", path: base + "explain?key=a&service=nope", status: 400, fields: []string{"service"}},
		{name: "diff like the CLI", method: "GET", path: base + "diff/staging", status: 200,
			check: sameAsCLI("diff", "development", "staging", "--format", "json")},
		{name: "diff for a service", method: "GET", path: base + "diff/staging?service=api", status: 200,
			check: sameAsCLI("diff", "development", "staging", "--service", "api", "--format", "json")},
		{name: "diff with an unknown environment", method: "GET", path: base + "diff/nope", status: 404, code: "not_found"},
		{name: "diff with one that has no release", method: "GET", path: base + "diff/production", status: 404},
		{name: "diff against an environment out of scope", method: "GET", path: "/api/v1/environments/staging/diff/development", token: stagingOnly, status: 403, code: "forbidden"},
		{name: "diff with a bad reveal", method: "GET", path: base + "diff/staging?reveal=2", status: 400, fields: []string{"reveal"}},
	})
}

func TestEventsArriveWithinOneSecond(t *testing.T) {
	h, _ := seeded(t)
	sdk, _ := h.token("app", "sdk", "development")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.hs.URL+"/api/v1/environments/development/events", nil)
	req.Header.Set("Authorization", "Bearer "+sdk)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %v", resp.StatusCode, resp.Header)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func(prefix string, within time.Duration) string {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-deadline:
				t.Fatalf("no %q within %v", prefix, within)
			}
		}
	}
	wait(": connected", time.Second)

	id2 := h.upload(shop(9999))
	// Another environment's change is not sent here.
	h.setRelease("staging", id2)
	began := time.Now()
	h.setRelease("development", id2)
	wait("event: release", time.Second)
	data := wait("data: ", time.Second)
	if took := time.Since(began); took > time.Second {
		t.Fatalf("event took %v", took)
	}
	var ev map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev); err != nil || ev["release"] != id2 || ev["environment"] != "development" {
		t.Fatalf("event data %q", data)
	}
	// The config a client fetches on that event is the new one.
	if r := h.must(200, "GET", "/api/v1/environments/development/config", sdk, nil); !bytes.Contains(r.body, []byte("9999")) {
		t.Errorf("config after the event: %s", r.body)
	}
	runCases(t, h, []apiCase{
		{name: "events of an unknown environment", method: "GET", path: "/api/v1/environments/nope/events", status: 404, code: "not_found"},
	})
}

func TestHeartbeatAndShutdownEndStreams(t *testing.T) {
	h, _ := seeded(t, func(o *server.Options) { o.Heartbeat = 20 * time.Millisecond })
	req, _ := http.NewRequest("GET", h.hs.URL+"/api/v1/environments/development/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	seen := false
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			seen = true
			break
		}
	}
	if !seen {
		t.Fatal("no heartbeat")
	}
	done := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(done)
	}()
	h.srv.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the stream outlived the server")
	}
}

func TestTokens(t *testing.T) {
	h, _ := seeded(t)
	created := h.must(201, "POST", "/api/v1/tokens", adminToken,
		map[string]any{"name": "ci", "role": "editor", "environments": []string{"development"}, "groups": []string{"devs"}}).json(t)
	tok, id := created["token"].(string), created["id"].(string)
	if !strings.HasPrefix(tok, "ep_") || !strings.HasPrefix(id, "tok_") || created["role"] != "editor" {
		t.Fatalf("created: %v", created)
	}
	list := h.must(200, "GET", "/api/v1/tokens", adminToken, nil)
	if bytes.Contains(list.body, []byte(tok)) || bytes.Contains(list.body, []byte("hash")) || !bytes.Contains(list.body, []byte(id)) {
		t.Fatalf("list shows secrets or lacks the token: %s", list.body)
	}
	h.must(200, "GET", "/api/v1/environments/development/config", tok, nil)
	h.must(403, "GET", "/api/v1/environments/staging/config", tok, nil)

	scopedAdmin, _ := h.token("dev admin", "admin", "development")
	runCases(t, h, []apiCase{
		{name: "role, environments and name all wrong", method: "POST", path: "/api/v1/tokens",
			body: map[string]any{"name": "", "role": "root", "environments": []string{"", "x", "x"}}, status: 400,
			fields: []string{"name", "role", "environments", "environments"}},
		{name: "sdk key without an environment", method: "POST", path: "/api/v1/tokens",
			body: map[string]any{"name": "app", "role": "sdk"}, status: 400, fields: []string{"environments"}},
		{name: "unknown environment", method: "POST", path: "/api/v1/tokens",
			body: map[string]any{"name": "app", "role": "sdk", "environments": []string{"nope"}}, status: 400, fields: []string{"environments"}},
		{name: "unknown field", method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "a", "role": "viewer", "scope": "x"}, status: 400, fields: []string{"scope"}},
		{name: "a scoped admin cannot mint an unscoped token", method: "POST", path: "/api/v1/tokens", token: scopedAdmin,
			body: map[string]any{"name": "wider", "role": "admin"}, status: 403},
		{name: "a scoped admin mints within its scope", method: "POST", path: "/api/v1/tokens", token: scopedAdmin,
			body: map[string]any{"name": "narrow", "role": "viewer", "environments": []string{"development"}}, status: 201},
		{name: "delete unknown", method: "DELETE", path: "/api/v1/tokens/tok_nope", status: 404, code: "not_found"},
		{name: "delete", method: "DELETE", path: "/api/v1/tokens/" + id, status: 204},
		{name: "a deleted token is refused", method: "GET", path: "/api/v1/environments/development/config", token: tok, status: 401, code: "unauthorized"},
	})
	// The bootstrap token is the only unscoped admin: it cannot be deleted.
	var tokens struct {
		Tokens []struct{ ID, Name string } `json:"tokens"`
	}
	_ = json.Unmarshal(h.must(200, "GET", "/api/v1/tokens", adminToken, nil).body, &tokens)
	for _, tk := range tokens.Tokens {
		if tk.Name == "bootstrap" {
			h.must(409, "DELETE", "/api/v1/tokens/"+tk.ID, adminToken, nil)
		}
	}
}

func TestAudit(t *testing.T) {
	h, _ := seeded(t)
	h.token("v", "viewer")
	r := h.must(200, "GET", "/api/v1/audit", adminToken, nil)
	var list struct {
		Entries []struct {
			Seq                                   int64
			Actor, Action, Target, PrevHash, Hash string
			Details                               map[string]any
		} `json:"entries"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range list.Entries {
		actions = append(actions, e.Action)
	}
	want := []string{"token.create", "release.create", "environment.set-release", "environment.set-release", "token.create"}
	if diff := cmp.Diff(want, actions); diff != "" {
		t.Errorf("audit actions (-want +got):\n%s", diff)
	}
	if bytes.Contains(r.body, []byte(adminToken)) || bytes.Contains(r.body, []byte("dev-secret-pass")) {
		t.Error("a secret in the audit log")
	}
	runCases(t, h, []apiCase{
		{name: "after", method: "GET", path: "/api/v1/audit?after=4", status: 200,
			check: func(t *testing.T, r response) {
				if n := len(r.json(t)["entries"].([]any)); n != 1 {
					t.Errorf("%d entries after 4", n)
				}
			}},
		{name: "bad after and limit", method: "GET", path: "/api/v1/audit?after=-1&limit=x", status: 400, fields: []string{"after", "limit"}},
		{name: "verify", method: "GET", path: "/api/v1/audit/verify", status: 200,
			check: func(t *testing.T, r response) {
				got := r.json(t) // plus head and checkpoint: audit_test.go
				if diff := cmp.Diff(map[string]any{"ok": true, "entries": float64(5)}, map[string]any{"ok": got["ok"], "entries": got["entries"]}); diff != "" {
					t.Error(diff)
				}
			}},
	})
}

// TestStoreEventsRefreshTheSnapshot changes the store behind the server's
// back, as another replica would, and sees config and SSE follow.
func TestStoreEventsRefreshTheSnapshot(t *testing.T) {
	h, _ := seeded(t)
	id2 := h.upload(shop(7777))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.hs.URL+"/api/v1/environments/development/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			got <- sc.Text()
		}
	}()
	err = h.st.WithTx(ctx, func(tx store.Tx) error {
		if _, err := tx.SetRelease(ctx, "development", id2, "elsewhere", time.Now()); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "environment", Environment: "development", ID: id2})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Second)
	for done := false; !done; {
		select {
		case l := <-got:
			done = l == "event: release"
		case <-deadline:
			t.Fatal("no event within 1 s of a change made through the store")
		}
	}
	if r := h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil); !bytes.Contains(r.body, []byte("7777")) {
		t.Errorf("config not refreshed: %s", r.body)
	}
	// A token deleted elsewhere stops working once its event arrives.
	tok, id := h.token("v", "viewer")
	h.must(200, "GET", "/api/v1/environments", tok, nil)
	_ = h.st.WithTx(ctx, func(tx store.Tx) error {
		tx.Notify(store.Event{Kind: "token", ID: id})
		return tx.DeleteToken(ctx, id)
	})
	for i := 0; ; i++ {
		if h.call("GET", "/api/v1/environments", tok, nil).status == http.StatusUnauthorized {
			break
		}
		if i == 100 {
			t.Fatal("a token deleted elsewhere still works")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
