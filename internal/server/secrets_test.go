package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/vault"
)

// canary is a secret value that must never show where it should not.
const canary = "CANARY-5ecr3t-9d1f-do-not-leak"

const secretsPath = "/api/v1/environments/staging/secrets/"

// secretsRoundTrip drives set, read, list, update and delete over HTTP.
func secretsRoundTrip(t *testing.T, h *harness) {
	r := h.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": "first"}).json(t)
	if r["name"] != "DB_PASSWORD" || r["version"] != float64(1) || r["updatedAt"] == nil || r["value"] != nil {
		t.Errorf("PUT answer: %v", r)
	}
	r = h.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": "second", "version": 1}).json(t)
	if r["version"] != float64(2) {
		t.Errorf("second PUT answer: %v", r)
	}
	h.must(200, "PUT", secretsPath+"API_KEY", adminToken, map[string]any{"value": ""})

	meta := h.must(200, "GET", secretsPath+"DB_PASSWORD", adminToken, nil).json(t)
	if meta["version"] != float64(2) || meta["updatedBy"] == nil || meta["value"] != nil {
		t.Errorf("GET without reveal: %v", meta)
	}
	got := h.must(200, "GET", secretsPath+"DB_PASSWORD?reveal=true", adminToken, nil)
	if m := got.json(t); m["value"] != "second" || m["version"] != float64(2) || m["name"] != "DB_PASSWORD" {
		t.Errorf("GET with reveal: %s", got.body)
	}
	if cc := got.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("a revealed value is cacheable: Cache-Control %q", cc)
	}

	var list struct {
		Secrets []map[string]any `json:"secrets"`
	}
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/environments/staging/secrets", adminToken, nil).body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Secrets) != 2 || list.Secrets[0]["name"] != "API_KEY" || list.Secrets[1]["name"] != "DB_PASSWORD" || list.Secrets[1]["version"] != float64(2) {
		t.Errorf("list: %v", list.Secrets)
	}
	for _, s := range list.Secrets {
		if _, ok := s["value"]; ok || s["updatedAt"] == nil || s["updatedBy"] == nil {
			t.Errorf("list item %v: want name, version, updatedAt, updatedBy and no value", s)
		}
	}
	if empty := h.must(200, "GET", "/api/v1/environments/development/secrets", adminToken, nil); strings.TrimSpace(string(empty.body)) != `{"secrets":[]}` {
		t.Errorf("list of an environment without secrets: %s", empty.body)
	}

	h.must(204, "DELETE", secretsPath+"DB_PASSWORD", adminToken, nil)
	h.must(404, "GET", secretsPath+"DB_PASSWORD", adminToken, nil)
	h.must(404, "GET", secretsPath+"DB_PASSWORD?reveal=true", adminToken, nil)
	h.must(404, "DELETE", secretsPath+"DB_PASSWORD", adminToken, nil)
	// Set again, it continues after the deletion's version.
	if r := h.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": "third", "version": 0}).json(t); r["version"] != float64(4) {
		t.Errorf("PUT after delete: %v", r)
	}

	runCases(t, h, []apiCase{
		{name: "unknown environment", method: "PUT", path: "/api/v1/environments/nope/secrets/A", token: adminToken, body: map[string]any{"value": "x"}, status: 404, code: "not_found"},
		{name: "list of an unknown environment", method: "GET", path: "/api/v1/environments/nope/secrets", token: adminToken, status: 404, code: "not_found"},
		{name: "missing secret", method: "GET", path: secretsPath + "NOPE", token: adminToken, status: 404, code: "not_found"},
	})
}

func TestSecretsRoundTrip(t *testing.T) {
	h, _ := seeded(t)
	secretsRoundTrip(t, h)
}

func TestSecretsRoundTripOnPostgres(t *testing.T) {
	h := startPostgres(t, pgtest.URL(t))
	id := h.upload(shop(8080))
	h.setRelease("staging", id)
	secretsRoundTrip(t, h)
}

func TestSecretCheckAndSet(t *testing.T) {
	h, _ := seeded(t)
	h.must(200, "PUT", secretsPath+"TOKEN", adminToken, map[string]any{"value": "a", "version": 0})
	for _, tc := range []struct {
		body   map[string]any
		status int
		says   string
	}{
		{map[string]any{"value": "b", "version": 0}, 409, "is at version 1"},
		{map[string]any{"value": "b", "version": 2}, 409, "is at version 1"},
		{map[string]any{"value": "b", "version": 1}, 200, ""},
		{map[string]any{"value": "c", "version": 1}, 409, "is at version 2"},
	} {
		r := h.call("PUT", secretsPath+"TOKEN", adminToken, tc.body)
		if r.status != tc.status {
			t.Fatalf("PUT %v: %d %s", tc.body, r.status, r.body)
		}
		if tc.says != "" && !strings.Contains(r.err(t).Message, tc.says) {
			t.Errorf("PUT %v: message %q, want it to say %q", tc.body, r.err(t).Message, tc.says)
		}
	}
	if r := h.call("PUT", "/api/v1/environments/staging/secrets/NEW", adminToken, map[string]any{"value": "x", "version": 3}); r.status != 409 || !strings.Contains(r.err(t).Message, "is not set") {
		t.Errorf("PUT of a new secret with version 3: %d %s", r.status, r.body)
	}
	h.must(409, "DELETE", secretsPath+"TOKEN?version=1", adminToken, nil)
	h.must(400, "DELETE", secretsPath+"TOKEN?version=x", adminToken, nil)
	h.must(204, "DELETE", secretsPath+"TOKEN?version=2", adminToken, nil)
}

func TestSecretValidation(t *testing.T) {
	h, _ := seeded(t)
	big := canary + strings.Repeat("x", vault.MaxValueBytes)
	for _, tc := range []struct {
		name, path string
		body       any
		field      string
	}{
		{"name starting with a digit", "1DB", map[string]any{"value": "x"}, "name"},
		{"name with a space", "A%20B", map[string]any{"value": "x"}, "name"},
		{"value missing", "A", map[string]any{}, "value"},
		{"value not a string", "A", map[string]any{"value": 5}, "value"},
		{"value too large", "A", map[string]any{"value": big}, "value"},
		{"negative version", "A", map[string]any{"value": "x", "version": -1}, "version"},
		{"unknown field", "A", map[string]any{"value": "x", "ttl": 5}, "ttl"},
		{"broken JSON", "A", `{"value": "` + canary + `\q"}`, "body"},
		{"two objects", "A", `{"value": "x"} {}`, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.call("PUT", secretsPath+tc.path, adminToken, tc.body)
			if r.status != 400 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if names := r.err(t).fieldNames(); len(names) != 1 || names[0] != tc.field {
				t.Errorf("fields %v, want [%s]: %s", names, tc.field, r.body)
			}
			if bytes.Contains(r.body, []byte(canary)) || bytes.Contains(r.body, []byte("xxxxxxxx")) {
				t.Errorf("the error echoes the value: %s", r.body)
			}
		})
	}
	h.must(400, "GET", secretsPath+"1DB", adminToken, nil)
	h.must(400, "GET", secretsPath+"A?reveal=maybe", adminToken, nil)
	h.must(200, "PUT", secretsPath+"OK_64K", adminToken, map[string]any{"value": strings.Repeat("x", vault.MaxValueBytes)})
}

// TestSecretPermissions: who may list, read metadata, reveal, write and
// delete, including an SDK key of another environment.
func TestSecretPermissions(t *testing.T) {
	h, _ := seeded(t)
	h.must(200, "PUT", secretsPath+"S", adminToken, map[string]any{"value": "v"})
	tokens := map[string]string{"admin": adminToken}
	for _, role := range []string{"viewer", "editor", "approver"} {
		tokens[role], _ = h.token(role, role)
	}
	tokens["sdk"], _ = h.token("app", "sdk", "staging")
	tokens["sdk-dev"], _ = h.token("dev app", "sdk", "development")
	tokens["admin-dev"], _ = h.token("dev admin", "admin", "development")
	all := []string{"viewer", "editor", "approver", "admin", "sdk", "sdk-dev", "admin-dev"}
	for _, tc := range []struct {
		method, path string
		body         any
		allow        []string
	}{
		{"GET", "/api/v1/environments/staging/secrets", nil, []string{"viewer", "editor", "approver", "admin", "sdk"}},
		{"GET", secretsPath + "S", nil, []string{"viewer", "editor", "approver", "admin", "sdk"}},
		{"GET", secretsPath + "S?reveal=true", nil, []string{"admin", "sdk"}},
		{"PUT", secretsPath + "S", map[string]any{"value": "w"}, []string{"editor", "admin"}},
	} {
		for _, who := range all {
			r := h.call(tc.method, tc.path, tokens[who], tc.body)
			allowed := false
			for _, a := range tc.allow {
				allowed = allowed || a == who
			}
			if allowed && r.status != 200 || !allowed && r.status != 403 {
				t.Errorf("%s %s as %s: %d, want allowed=%v: %s", tc.method, tc.path, who, r.status, allowed, r.body)
			}
			if !allowed && (bytes.Contains(r.body, []byte(`"value"`)) || r.err(t).Code != "forbidden") {
				t.Errorf("%s %s as %s: %s", tc.method, tc.path, who, r.body)
			}
		}
	}
	for _, who := range []string{"viewer", "approver", "sdk", "sdk-dev", "admin-dev"} {
		h.must(403, "DELETE", secretsPath+"S", tokens[who], nil)
	}
	h.must(204, "DELETE", secretsPath+"S", tokens["editor"], nil)
	// An unauthenticated request learns nothing either.
	h.must(401, "GET", secretsPath+"S?reveal=true", "", nil)
}

// canaryWorkspace is shop with staging's database settings from secrets,
// one of them interpolated into a longer string.
func canaryWorkspace() map[string]string {
	files := shop(8080)
	files["config/staging.yaml"] = "database:\n  host: ${DB_HOST}\n  password: ${DB_PASSWORD}\n  url: postgres://app:${DB_PASSWORD}@${DB_HOST}/shop\nlogging:\n  level: warn\n"
	return files
}

// TestSecretCanary sets a canary value through the API and then drives
// every endpoint, the logs and the audit log: the value appears only where
// a token allowed to reveal asked for it, and nowhere in the database file.
func TestSecretCanary(t *testing.T) {
	var logs syncBuffer
	h := start(t, func(o *server.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	rel := h.upload(canaryWorkspace())
	h.setRelease("development", rel)
	h.setRelease("staging", rel)
	events := subscribe(t, h, "staging")
	awaitLine(t, events, ": connected", time.Second)
	// Unresolved references: the config is not served yet.
	h.must(409, "GET", "/api/v1/environments/staging/config", adminToken, nil)

	h.must(200, "PUT", secretsPath+"DB_HOST", adminToken, map[string]any{"value": "db.internal"})
	awaitLine(t, events, "event: secrets", time.Second)
	h.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": canary})
	awaitLine(t, events, "event: secrets", time.Second)
	viewer, _ := h.token("viewer", "viewer")
	editor, _ := h.token("editor", "editor")
	sdk, _ := h.token("app", "sdk", "staging")
	h.must(200, "PUT", secretsPath+"ROTATED", editor, map[string]any{"value": canary + "-old"})
	h.must(200, "PUT", secretsPath+"ROTATED", editor, map[string]any{"value": canary})

	// Failures around the value must not echo it either.
	h.must(409, "PUT", secretsPath+"DB_PASSWORD", editor, map[string]any{"value": canary, "version": 9})
	h.must(400, "PUT", secretsPath+"DB_PASSWORD", editor, `{"value":"`+canary+`\x"}`)
	h.must(400, "PUT", secretsPath+"1BAD", editor, map[string]any{"value": canary})
	h.must(403, "GET", secretsPath+"DB_PASSWORD?reveal=true", viewer, nil)

	var seen []string
	check := func(token, method, path string, status int) response {
		t.Helper()
		r := h.must(status, method, path, token, nil)
		seen = append(seen, path)
		if bytes.Contains(r.body, []byte(canary)) {
			t.Errorf("%s %s shows the secret value: %s", method, path, r.body)
		}
		return r
	}
	for _, tok := range []string{adminToken, viewer, editor, sdk} {
		check(tok, "GET", "/api/v1/environments/staging/config", 200)
		check(tok, "GET", "/api/v1/environments/staging/config?service=api", 200)
		check(tok, "GET", "/api/v1/environments/staging/explain?key=database.password", 200)
		check(tok, "GET", "/api/v1/environments/staging/explain?key=database.url", 200)
		check(tok, "GET", "/api/v1/environments/staging/secrets", 200)
		check(tok, "GET", secretsPath+"DB_PASSWORD", 200)
	}
	// reveal=true from tokens that may not reveal is quietly redacted.
	for _, tok := range []string{viewer, editor} {
		check(tok, "GET", "/api/v1/environments/staging/config?reveal=true", 200)
		check(tok, "GET", "/api/v1/environments/staging/explain?key=database.url&reveal=true", 200)
	}
	for _, tok := range []string{adminToken, viewer, editor} {
		check(tok, "GET", "/api/v1/environments/staging/diff/development", 200)
		check(tok, "GET", "/api/v1/environments/development/diff/staging", 200)
	}
	for _, path := range []string{"/api/v1/environments", "/api/v1/releases", "/api/v1/releases/" + rel, "/api/v1/tokens",
		"/api/v1/audit", "/api/v1/audit/verify", "/metrics", "/health/ready", "/api/v1/openapi.json"} {
		check(adminToken, "GET", path, 200)
	}

	// The config shows the secret redacted, with its provenance.
	var cfg struct {
		Database map[string]any `json:"database"`
	}
	json.Unmarshal(check(adminToken, "GET", "/api/v1/environments/staging/config", 200).body, &cfg)
	for _, k := range []string{"password", "url", "host"} {
		if cfg.Database[k] != "<redacted>" {
			t.Errorf("database.%s = %v, want <redacted>", k, cfg.Database[k])
		}
	}
	ex := check(viewer, "GET", "/api/v1/environments/staging/explain?key=database.password", 200).json(t)
	if src := ex["source"].(map[string]any); src["kind"] != "secret" || src["name"] != "DB_PASSWORD" || src["version"] != float64(1) {
		t.Errorf("explain source: %v", src)
	}

	// Tokens allowed to reveal see it, where they ask to.
	for _, tok := range []string{adminToken, sdk} {
		json.Unmarshal(h.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", tok, nil).body, &cfg)
		if cfg.Database["password"] != canary || cfg.Database["url"] != "postgres://app:"+canary+"@db.internal/shop" {
			t.Errorf("revealed config: %v", cfg.Database)
		}
		if r := h.must(200, "GET", secretsPath+"DB_PASSWORD?reveal=true", tok, nil).json(t); r["value"] != canary {
			t.Errorf("revealed secret: %v", r)
		}
	}
	h.must(204, "DELETE", secretsPath+"ROTATED", editor, nil)

	// Audit: set, reveal and delete are there, with no value inside.
	var audit struct {
		Entries []struct {
			Actor, Action, Target string
			Details               map[string]any
		} `json:"entries"`
	}
	auditBody := h.must(200, "GET", "/api/v1/audit", adminToken, nil).body
	if bytes.Contains(auditBody, []byte(canary)) {
		t.Errorf("the audit log holds the secret value")
	}
	if err := json.Unmarshal(auditBody, &audit); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range audit.Entries {
		count[e.Action]++
		if e.Action == "secret.reveal" && (e.Target != "staging/DB_PASSWORD" || e.Details["version"] != float64(1) || e.Details["name"] != "DB_PASSWORD") {
			t.Errorf("reveal entry: %+v", e)
		}
	}
	if count["secret.set"] != 4 || count["secret.reveal"] != 2 || count["secret.delete"] != 1 {
		t.Errorf("audit actions %v: want 4 secret.set, 2 secret.reveal (config reveals are not secret reads), 1 secret.delete", count)
	}
	if r := h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil).json(t); r["ok"] != true {
		t.Errorf("audit chain: %v", r)
	}

	if strings.Contains(logs.String(), canary) {
		t.Errorf("the server's logs hold the secret value")
	}
	if !strings.Contains(logs.String(), `"route":"PUT /api/v1/environments/{env}/secrets/{name}"`) {
		t.Errorf("no request log lines captured; the log check proves nothing:\n%s", logs.String())
	}
	// At rest the value is sealed.
	h.st.Close()
	for _, f := range []string{h.dbPath, h.dbPath + "-wal"} {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the secret value in plaintext", filepath.Base(f))
		}
	}
}

// TestSecretChangeReresolves: a config that references a secret follows it
// (new ETag), including on another replica (PostgreSQL).
func TestSecretChangeReresolves(t *testing.T) {
	h := start(t)
	rel := h.upload(canaryWorkspace())
	h.setRelease("staging", rel)
	h.must(200, "PUT", secretsPath+"DB_HOST", adminToken, map[string]any{"value": "a"})
	h.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": "p1"})
	r1 := h.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil)
	h.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": "p2"})
	r2 := h.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil)
	if r1.header.Get("ETag") == r2.header.Get("ETag") || !bytes.Contains(r2.body, []byte(`"p2"`)) {
		t.Errorf("config after a secret change: %s", r2.body)
	}
	// A redacted body changes too: the secret's version is news to clients.
	h.must(204, "DELETE", secretsPath+"DB_PASSWORD", adminToken, nil)
	h.must(409, "GET", "/api/v1/environments/staging/config", adminToken, nil)
}

func TestSecretChangeReachesOtherReplicas(t *testing.T) {
	u := pgtest.URL(t)
	a, b := startPostgres(t, u), startPostgres(t, u)
	rel := a.upload(canaryWorkspace())
	a.setRelease("staging", rel)
	a.must(200, "PUT", secretsPath+"DB_HOST", adminToken, map[string]any{"value": "host-set-on-a"})
	// b learns of a's writes asynchronously: subscribe once b has caught
	// up, so the next event is the one under test, not b's catching up.
	for deadline := time.Now().Add(5 * time.Second); ; {
		// Caught up: staging's release is there and only DB_PASSWORD, not
		// set yet, keeps its config from resolving.
		r := b.call("GET", "/api/v1/environments/staging/config", adminToken, nil)
		if r.status == 409 && bytes.Contains(r.body, []byte("DB_PASSWORD is not set")) && !bytes.Contains(r.body, []byte("DB_HOST")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b did not catch up: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	events := subscribe(t, b, "staging")
	awaitLine(t, events, ": connected", time.Second)
	a.must(200, "PUT", secretsPath+"DB_PASSWORD", adminToken, map[string]any{"value": "from-a"})
	awaitLine(t, events, "event: secrets", time.Second)
	if r := b.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil); !bytes.Contains(r.body, []byte("from-a")) {
		t.Errorf("replica b's config: %s", r.body)
	}
}

func TestSecretsOffWithoutMasterKey(t *testing.T) {
	h, _ := seeded(t, func(o *server.Options) { o.Vault, o.Audit.Chain = nil, testChain(t) })
	if r := h.call("GET", "/api/v1/environments/staging/secrets", adminToken, nil); r.status != 503 || !strings.Contains(r.err(t).Message, "master key") {
		t.Errorf("secrets without a vault: %d %s", r.status, r.body)
	}
	h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
}

// TestMasterKeyRotationAcrossRestarts: rotate the master key while the
// server is stopped, restart with the new key, read every secret; the old
// key alone no longer starts the server; old and new together do.
func TestMasterKeyRotationAcrossRestarts(t *testing.T) {
	oldKey, newKey := testMasterKey, bytes.Repeat([]byte{0x17}, vault.KeySize)
	h := start(t)
	rel := h.upload(canaryWorkspace())
	h.setRelease("staging", rel)
	h.setRelease("development", rel)
	want := map[string]string{"staging/DB_HOST": "h", "staging/DB_PASSWORD": canary, "development/DEV_ONLY": "d"}
	for k, v := range want {
		env, name, _ := strings.Cut(k, "/")
		h.must(200, "PUT", "/api/v1/environments/"+env+"/secrets/"+name, adminToken, map[string]any{"value": v})
	}
	h.srv.Close()
	h.hs.Close()
	h.st.Close()

	// reopen starts a server on the same database with v, or says why it
	// does not start.
	reopen := func(v *vault.Vault) (*harness, error) {
		st := mustOpen(t, h.dbPath)
		srv, err := server.New(context.Background(), server.Options{Store: st, BootstrapToken: adminToken, Vault: v})
		if err != nil {
			st.Close()
			return nil, err
		}
		srv.Close()
		st.Close()
		return startOn(t, mustOpen(t, h.dbPath), func(o *server.Options) { o.Vault = v }), nil
	}
	mk := func(b []byte) *vault.MasterKey {
		k, err := vault.NewMasterKey(b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	reveal := func(h *harness, key string) any {
		env, name, _ := strings.Cut(key, "/")
		return h.must(200, "GET", "/api/v1/environments/"+env+"/secrets/"+name+"?reveal=true", adminToken, nil).json(t)["value"]
	}

	// A server holding the new key and the old one as previous serves
	// before, during and after the rotation: no downtime.
	both, err := reopen(testVault(t, newKey, oldKey))
	if err != nil {
		t.Fatalf("start with new + previous before rotation: %v", err)
	}
	if got := reveal(both, "staging/DB_PASSWORD"); got != canary {
		t.Errorf("before rotation: %v", got)
	}
	// Through the running server's store: the database is locked to it.
	res, err := vault.RotateMaster(context.Background(), both.st, mk(oldKey), mk(newKey), "test", time.Now())
	if err != nil || res.Rewrapped != 2 {
		t.Fatalf("RotateMaster = %+v, %v", res, err)
	}
	for k, v := range want {
		if got := reveal(both, k); got != v {
			t.Errorf("%s during the rotation: %v", k, got)
		}
	}

	both.srv.Close() // one server per SQLite file
	both.hs.Close()
	both.st.Close()

	_, err = reopen(testVault(t, oldKey))
	if err == nil || !strings.Contains(err.Error(), "wrapped by master key "+mk(newKey).ID()) {
		t.Errorf("start with the old key after rotation = %v; want a clear error naming the key", err)
	}
	h2, err := reopen(testVault(t, newKey))
	if err != nil {
		t.Fatalf("start with the new key: %v", err)
	}
	for k, v := range want {
		if got := reveal(h2, k); got != v {
			t.Errorf("%s after rotation: %v", k, got)
		}
	}
	if r := h2.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil); !bytes.Contains(r.body, []byte(canary)) {
		t.Errorf("config after rotation: %s", r.body)
	}
}

func mustOpen(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
