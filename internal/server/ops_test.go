package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store/sqlite"
)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	h := start(t)
	r := h.must(200, "GET", "/api/v1/openapi.json", "", nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	registered := h.srv.Patterns()
	sort.Strings(documented)
	sort.Strings(registered)
	if diff := cmp.Diff(registered, documented); diff != "" {
		t.Errorf("registered routes (-) and documented operations (+) differ:\n%s", diff)
	}
	// Every $ref points at something.
	refs := regexp.MustCompile(`"\$ref": *"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(r.body), -1)
	var full map[string]any
	_ = json.Unmarshal(r.body, &full)
	comps := full["components"].(map[string]any)
	for _, m := range refs {
		if _, ok := comps[m[1]].(map[string]any)[m[2]]; !ok {
			t.Errorf("dangling $ref %s/%s", m[1], m[2])
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h, _ := seeded(t)
	for _, path := range []string{"/api/v1/environments", "/api/v1/environments/development/config", "/nope", "/health/live"} {
		r := h.call("GET", path, adminToken, nil)
		for k, want := range map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		} {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		if cc := r.header.Get("Cache-Control"); path != "/api/v1/environments/development/config" && cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
	}
	// Unknown routes and methods answer with the error body.
	if e := h.must(404, "GET", "/api/v1/nothing", adminToken, nil).err(t); e.Code != "not_found" {
		t.Errorf("404 code %q", e.Code)
	}
	r := h.must(405, "DELETE", "/api/v1/releases", adminToken, nil)
	if r.header.Get("Allow") == "" || r.err(t).Code == "" {
		t.Errorf("405: %v %s", r.header, r.body)
	}
	if r := h.must(401, "GET", "/api/v1/environments", "", nil); r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

func TestRateLimit(t *testing.T) {
	h := start(t, func(o *server.Options) { o.RateLimit, o.RateBurst = 0.5, 2 })
	h.must(200, "GET", "/api/v1/environments", adminToken, nil)
	h.must(200, "GET", "/api/v1/environments", adminToken, nil)
	r := h.must(429, "GET", "/api/v1/environments", adminToken, nil)
	if r.header.Get("Retry-After") != "2" || r.err(t).Code != "rate_limited" {
		t.Errorf("429: %v %s", r.header, r.body)
	}
	// Public routes are not limited per token.
	h.must(200, "GET", "/health/live", "", nil)
}

func TestBootstrapToken(t *testing.T) {
	// Generated: printed once, on the first start only.
	ctx := context.Background()
	path := t.TempDir() + "/envplane.db"
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var stderr bytes.Buffer
	srv, err := server.New(ctx, server.Options{Store: st, Stderr: &stderr, Audit: app.AuditOptions{Chain: testChain(t)}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	m := regexp.MustCompile(`^envplane: bootstrap admin token: (ep_[a-z2-7]{52})\n$`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("stderr %q", stderr.String())
	}
	stderr.Reset()
	srv, err = server.New(ctx, server.Options{Store: st, Stderr: &stderr, Audit: app.AuditOptions{Chain: testChain(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if stderr.Len() != 0 {
		t.Fatalf("second start printed %q", stderr.String())
	}
	hs := newHTTP(t, srv)
	req, _ := http.NewRequest("GET", hs+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+m[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bootstrap token: %d", resp.StatusCode)
	}

	// Given: not printed, and it is the admin token.
	h := start(t)
	if strings.Contains(h.stderr.String(), "ep_") {
		t.Errorf("given token printed: %q", h.stderr.String())
	}
	h.must(200, "GET", "/api/v1/tokens", adminToken, nil)
	if _, err := server.New(ctx, server.Options{Store: st, BootstrapToken: "ep_short", Audit: app.AuditOptions{Chain: testChain(t)}}); err == nil {
		t.Error("a short bootstrap token was accepted")
	}
}

func newHTTP(t *testing.T, srv *server.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	h, _ := seeded(t)
	h.token("v", "viewer")
	h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil)
	db, err := sql.Open("sqlite", h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit SET actor = 'mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	got := h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil).json(t)
	if got["ok"] != false || got["badSeq"] != float64(3) || got["entries"] != float64(2) {
		t.Fatalf("verify after tampering: %v", got)
	}
	// Removing a row is caught too.
	if _, err := db.Exec(`UPDATE audit SET actor = (SELECT actor FROM audit WHERE seq = 2) WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	if got := h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil).json(t); got["ok"] != false {
		t.Fatalf("verify after deleting a row: %v", got)
	}
}

func TestReadinessAndStoreOutage(t *testing.T) {
	h, _ := seeded(t)
	r := h.must(200, "GET", "/health/ready", "", nil)
	_, latest, err := h.st.Migrations(t.Context())
	if err != nil || latest < 3 {
		t.Fatalf("migrations: %d, %v", latest, err)
	}
	migrations := itoa(latest) + "/" + itoa(latest)
	if diff := cmp.Diff(map[string]any{"ready": true, "store": "ok", "migrations": migrations}, r.json(t)); diff != "" {
		t.Error(diff)
	}
	h.must(200, "GET", "/health/live", "", nil)
	cfg := h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)

	h.st.Close()
	r = h.must(503, "GET", "/health/ready", "", nil)
	if m := r.json(t); m["ready"] != false || m["store"] != "unreachable" || len(m["problems"].([]any)) == 0 {
		t.Errorf("ready with the store closed: %s", r.body)
	}
	h.must(200, "GET", "/health/live", "", nil)
	// Config keeps being served from memory, also for another service.
	again := h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	if !bytes.Equal(cfg.body, again.body) {
		t.Error("config changed while the store was down")
	}
	h.must(200, "GET", "/api/v1/environments/development/config?service=worker", adminToken, nil)
	h.must(200, "GET", "/api/v1/environments", adminToken, nil)
	// Writes fail without details of the cause.
	w := h.call("POST", "/api/v1/tokens", adminToken, map[string]any{"name": "x", "role": "viewer"})
	if w.status != http.StatusServiceUnavailable || w.err(t).Code != "unavailable" || bytes.Contains(w.body, []byte("sql")) {
		t.Errorf("write with the store closed: %d %s", w.status, w.body)
	}
}

func TestMetrics(t *testing.T) {
	h, _ := seeded(t)
	h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	h.must(404, "GET", "/api/v1/environments/nope/config", adminToken, nil)
	req, _ := http.NewRequest("GET", h.hs.URL+"/api/v1/environments/development/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := string(h.must(200, "GET", "/metrics", "", nil).body)
	for _, want := range []string{
		`envplane_http_requests_total{code="200",route="GET /api/v1/environments/{env}/config"} 2`,
		`envplane_http_requests_total{code="404",route="GET /api/v1/environments/{env}/config"} 1`,
		`envplane_http_request_duration_seconds_bucket{code="200",route="GET /api/v1/environments/{env}/config",le="+Inf"} 2`,
		`envplane_config_cache_hits_total 1`,
		`envplane_config_cache_misses_total 1`,
		`envplane_sse_clients 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRequestLogs(t *testing.T) {
	var logs syncBuffer
	h, _ := seeded(t, func(o *server.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	tok, id := h.token("ci", "editor")
	h.must(200, "GET", "/api/v1/environments/development/config?reveal=true", adminToken, nil)
	h.must(200, "GET", "/api/v1/releases", tok, nil)
	out := logs.String()
	if strings.Contains(out, tok) || strings.Contains(out, adminToken) || strings.Contains(out, "dev-secret-pass") {
		t.Fatal("a secret in the logs")
	}
	var found bool
	configLines := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == "request" && m["route"] == "GET /api/v1/environments/{env}/config" && m["level"] == "INFO" {
			configLines++
			if m["status"] != float64(200) || m["bytes"] == nil {
				t.Errorf("config request log: %s", line)
			}
		}
		if m["msg"] == "request" && m["route"] == "GET /api/v1/releases" {
			found = true
			for _, k := range []string{"method", "status", "duration", "token"} {
				if _, ok := m[k]; !ok {
					t.Errorf("request log lacks %s: %s", k, line)
				}
			}
			if m["token"] != id {
				t.Errorf("token id %v, want %s", m["token"], id)
			}
		}
	}
	if !found {
		t.Fatalf("no request log:\n%s", out)
	}
	// Config reads are logged at info too (sampled above 10 a second).
	if configLines != 1 {
		t.Errorf("%d info lines for one config read", configLines)
	}
}

// TestGracefulShutdown drains a request in flight and ends event streams.
func TestGracefulShutdown(t *testing.T) {
	h, _ := seeded(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	req, _ := http.NewRequest("GET", base+"/api/v1/environments/development/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return with an open event stream")
	}
	if _, err := http.Get(base + "/health/live"); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}
