package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/vault"
)

// adminToken is the bootstrap token of every test server.
const adminToken = "ep_testadmintoken0000000000000000000000"

// testMasterKey is the master key of every test server unless one says otherwise.
var testMasterKey = bytes.Repeat([]byte{0x42}, vault.KeySize)

func testVault(t testing.TB, key []byte, previous ...[]byte) *vault.Vault {
	t.Helper()
	mk, err := vault.NewMasterKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var prev []*vault.MasterKey
	for _, p := range previous {
		k, err := vault.NewMasterKey(p)
		if err != nil {
			t.Fatal(err)
		}
		prev = append(prev, k)
	}
	v, err := vault.New(vault.Options{Master: mk, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// harness is one server on a fresh SQLite database, reached over real HTTP
// on 127.0.0.1.
type harness struct {
	t      testing.TB
	dbPath string // SQLite only
	st     store.Store
	srv    *server.Server
	hs     *httptest.Server
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t testing.TB, mod ...func(*server.Options)) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envplane.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	h := startOn(t, st, mod...)
	h.dbPath = path
	return h
}

// startOn starts a server on st, which it closes at the end of the test.
func startOn(t testing.TB, st store.Store, mod ...func(*server.Options)) *harness {
	t.Helper()
	h := &harness{t: t, st: st, stderr: &syncBuffer{}}
	opts := server.Options{Store: st, BootstrapToken: adminToken, Stderr: h.stderr, Vault: testVault(t, testMasterKey)}
	for _, m := range mod {
		m(&opts)
	}
	var err error
	h.srv, err = server.New(context.Background(), opts)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	h.hs = httptest.NewServer(h.srv.Handler())
	t.Cleanup(func() {
		h.srv.Close() // ends SSE streams, so the HTTP server can drain
		h.hs.Close()
		st.Close()
	})
	return h
}

// response is what a call got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// apiError is the error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fields  []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"fields"`
}

func (r response) err(t testing.TB) apiError {
	t.Helper()
	var b struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error.Code == "" {
		t.Fatalf("not an error body (%v): %s", err, r.body)
	}
	return b.Error
}

func (e apiError) fieldNames() []string {
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

// call sends one request. body is sent as is when it is a string, as JSON
// otherwise; headers are name, value pairs.
func (h *harness) call(method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.hs.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// must fails the test unless the call answered status.
func (h *harness) must(status int, method, path, token string, body any, headers ...string) response {
	h.t.Helper()
	r := h.call(method, path, token, body, headers...)
	if r.status != status {
		h.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.status, status, r.body)
	}
	return r
}

// upload stores files as a release and returns its ID.
func (h *harness) upload(files map[string]string) string {
	h.t.Helper()
	r := h.call("POST", "/api/v1/releases", adminToken, map[string]any{"files": files})
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		h.t.Fatalf("upload: %d %s", r.status, r.body)
	}
	return r.json(h.t)["id"].(string)
}

// setRelease makes release current in env.
func (h *harness) setRelease(env, id string) {
	h.t.Helper()
	h.must(http.StatusOK, "PUT", "/api/v1/environments/"+env+"/release", adminToken, map[string]string{"release": id})
}

// token creates a token and returns its text and ID.
func (h *harness) token(name, role string, envs ...string) (token, id string) {
	h.t.Helper()
	if envs == nil {
		envs = []string{}
	}
	m := h.must(http.StatusCreated, "POST", "/api/v1/tokens", adminToken,
		map[string]any{"name": name, "role": role, "environments": envs}).json(h.t)
	return m["token"].(string), m["id"].(string)
}

// shop is a small workspace: development and staging take releases
// directly, production through promotions; staging references variables
// the server cannot resolve.
func shop(port int) map[string]string {
	return map[string]string{
		"envplane.yaml": `name: shop
environments:
  - name: development
    data: synthetic
    protection: open
  - name: staging
    data: anonymized
    protection: guarded
  - name: production
    data: live
    protection: restricted
    promotion:
      from: staging
      checks: [smoke]
      checklist: ["On-call team notified"]
      approvals: { required: 1 }
services: [api, worker]
config:
  layers:
    - config/default.yaml
    - config/{env}.yaml
    - config/{service}.yaml
flags: [flags.yaml]
`,
		"flags.yaml":              shopFlags,
		"config/default.yaml":     "server:\n  host: 0.0.0.0\n  port: " + itoa(port) + "\ndatabase:\n  host: localhost\n  password: dev-secret-pass\nlogging:\n  level: debug\n",
		"config/development.yaml": "logging:\n  level: info\n",
		"config/staging.yaml":     "database:\n  host: ${DB_HOST}\n  password: ${DB_PASSWORD}\nlogging:\n  level: warn\n",
		"config/production.yaml":  "logging:\n  level: error\n",
		"config/api.yaml":         "server:\n  port: 9000\n",
	}
}

// shopFlags are the shop's feature flags, one of each type.
const shopFlags = `flags:
  new-checkout:
    state: ENABLED
    variants: {"on": true, "off": false}
    defaultVariant: "off"
    targeting:
      if: [{ends_with: [{var: email}, "@example.com"]}, "on", null]
  banner:
    state: ENABLED
    variants: {plain: "Welcome", loud: "WELCOME!"}
    defaultVariant: plain
  page-size:
    state: ENABLED
    variants: {small: 10, large: 50}
    defaultVariant: small
    targeting: {fractional: [["small", 50], ["large", 50]]}
  ratio:
    state: ENABLED
    variants: {low: 0.25, high: 0.75}
    defaultVariant: low
    environments:
      staging: {defaultVariant: high}
  theme:
    state: ENABLED
    variants: {light: {bg: "#fff"}, dark: {bg: "#000"}}
    defaultVariant: dark
  retired:
    state: DISABLED
    variants: {"on": true, "off": false}
    defaultVariant: "on"
`

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// openPromotion opens a promotion of release into production as the
// bootstrap admin and returns its ID.
func (h *harness) openPromotion(release string) string {
	h.t.Helper()
	return h.must(http.StatusCreated, "POST", "/api/v1/promotions", adminToken,
		map[string]string{"release": release, "environment": "production"}).json(h.t)["id"].(string)
}

// seeded starts a server with the shop workspace current in development
// and staging.
func seeded(t testing.TB, mod ...func(*server.Options)) (*harness, string) {
	h := start(t, mod...)
	id := h.upload(shop(8080))
	h.setRelease("development", id)
	h.setRelease("staging", id)
	return h, id
}
