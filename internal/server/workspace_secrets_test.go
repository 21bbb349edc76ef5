package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/server"
)

// fileCanary is a value only the release's workspace secrets files hold.
const fileCanary = "FILE-CANARY-7e1a-never-in-logs"

// sealed writes a SOPS-format secrets file of env for recipients.
func sealed(t testing.TB, env string, values map[string]string, recipients ...string) string {
	t.Helper()
	o, err := secrets.New(env, recipients)
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range values {
		if err := o.Set(n, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// vaulted is a workspace whose staging and production take their database
// settings from workspace secrets files sealed for the server and for a
// developer. database.url is not sensitive by name: only its coming from a
// secret hides it.
func vaulted(t testing.TB, serverRecipient, other string) map[string]string {
	values := map[string]string{"DB_PASSWORD": fileCanary, "DB_HOST": "db.file.internal"}
	return map[string]string{
		"envplane.yaml": `name: vaulted
environments:
  - development
  - staging
  - name: production
    promotion: { from: staging, checks: [references, policy] }
config:
  layers:
    - config/{env}.yaml
secrets:
  dir: secrets
  recipients:
    staging: [` + serverRecipient + `, ` + other + `]
    production: [` + serverRecipient + `, ` + other + `]
policies:
  - name: real-database
    environments: [production]
    rule: config.database.host != "localhost"
    message: production needs a real database host
`,
		"config/development.yaml":     "database:\n  host: localhost\n  password: dev\n  url: postgres://app:dev@localhost/shop\n",
		"config/staging.yaml":         "database:\n  host: ${DB_HOST}\n  password: ${DB_PASSWORD}\n  url: postgres://app:${DB_PASSWORD}@${DB_HOST}/shop\n",
		"config/production.yaml":      "database:\n  host: ${DB_HOST}\n  password: ${DB_PASSWORD}\n  url: postgres://app:${DB_PASSWORD}@${DB_HOST}/shop\n",
		"secrets/staging.enc.yaml":    sealed(t, "staging", values, serverRecipient, other),
		"secrets/production.enc.yaml": sealed(t, "production", values, serverRecipient, other),
	}
}

// withIdentity gives the server ids and logs into logs.
func withIdentity(logs *syncBuffer, ids ...age.Identity) func(*server.Options) {
	return func(o *server.Options) {
		o.AgeIdentities = ids
		o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.PromotionInterval = 10 * time.Millisecond
	}
}

type explained struct {
	Value  json.RawMessage
	Source struct {
		Kind, Name, File string
		Version          int
	}
}

func (h *harness) explain(key, query string) explained {
	h.t.Helper()
	var e explained
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/environments/staging/explain?key="+key+query, adminToken, nil).body, &e); err != nil {
		h.t.Fatal(err)
	}
	return e
}

// TestWorkspaceSecretsOnServer: a release's secrets file sealed for the
// server's recipient (and a developer's) resolves server-side: redacted in
// config, shown on reveal (audited), with its file in explain's
// provenance, under the server-side secrets; the references and policy
// checks of a promotion see it.
func TestWorkspaceSecretsOnServer(t *testing.T) {
	srvID, dev := newIdentity(t), newIdentity(t)
	var logs syncBuffer
	h := start(t, withIdentity(&logs, srvID))
	rel := h.upload(vaulted(t, srvID.Recipient().String(), dev.Recipient().String()))
	h.setRelease("development", rel)
	h.setRelease("staging", rel)

	plain := h.must(200, "GET", "/api/v1/environments/staging/config", adminToken, nil).json(t)
	want := map[string]any{"database": map[string]any{"host": "<redacted>", "password": "<redacted>", "url": "<redacted>"}}
	if diff := cmp.Diff(want, plain); diff != "" {
		t.Errorf("config (-want +got)\n%s", diff)
	}
	revealed := h.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil).json(t)
	want = map[string]any{"database": map[string]any{"host": "db.file.internal", "password": fileCanary,
		"url": "postgres://app:" + fileCanary + "@db.file.internal/shop"}}
	if diff := cmp.Diff(want, revealed); diff != "" {
		t.Errorf("revealed config (-want +got)\n%s", diff)
	}
	if got := h.steps("staging"); !strings.Contains(strings.Join(got, "\n"), "config.reveal") {
		t.Errorf("no config.reveal audit entry for staging: %q", got)
	}

	e := h.explain("database.password", "")
	if e.Source.Kind != "secret" || e.Source.Name != "DB_PASSWORD" || e.Source.File != "secrets/staging.enc.yaml" || string(e.Value) != `"<redacted>"` {
		t.Errorf("explain database.password: %+v %s; want secret DB_PASSWORD from secrets/staging.enc.yaml, redacted", e.Source, e.Value)
	}
	if e := h.explain("database.password", "&reveal=true"); string(e.Value) != `"`+fileCanary+`"` {
		t.Errorf("explain with reveal: %s", e.Value)
	}

	// Server-side secrets come after the file: they win, and say so.
	h.must(200, "PUT", secretsPath+"DB_HOST", adminToken, map[string]any{"value": "db.server.internal"})
	eventually(t, func() bool {
		return bytes.Contains(h.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil).body, []byte(`"db.server.internal"`))
	})
	if e := h.explain("database.host", ""); e.Source.Kind != "secret" || e.Source.Name != "DB_HOST" || e.Source.File != "" || e.Source.Version != 1 {
		t.Errorf("explain database.host: %+v; want the server-side secret DB_HOST v1", e.Source)
	}

	// The production promotion's references and policy checks resolve
	// with production's secrets file.
	id := h.openPromotion(rel)
	p := h.waitState(id, "applied")
	for _, c := range p.Gates.Checks {
		if c.Status != "passed" {
			t.Errorf("check %s: %s %s", c.Name, c.Status, c.Message)
		}
	}
	if strings.Contains(logs.String(), "skipped") {
		t.Errorf("a file the server opens was skipped:\n%s", logs.String())
	}
}

// TestWorkspaceSecretsNotOpened: without an identity, or with one the file
// does not list, the file is skipped with one log line: its references
// are unresolved (the config is not served, and says why), and the
// references check of a promotion fails naming them.
func TestWorkspaceSecretsNotOpened(t *testing.T) {
	srvID, dev := newIdentity(t), newIdentity(t)
	files := vaulted(t, srvID.Recipient().String(), dev.Recipient().String())
	for _, tt := range []struct {
		name string
		ids  []age.Identity
		log  string
	}{
		{"no identity", nil, "the server has no age identity"},
		{"not a recipient", []age.Identity{newIdentity(t)}, "the server's age identity is not among its recipients"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			h := start(t, withIdentity(&logs, tt.ids...))
			rel := h.upload(files)
			h.setRelease("staging", rel)
			for range 2 { // skipped once, not per request
				e := h.must(409, "GET", "/api/v1/environments/staging/config", adminToken, nil).err(t)
				if diff := cmp.Diff([]string{"config.database.host", "config.database.password", "config.database.url", "config.database.url", "files.secrets/staging.enc.yaml"}, e.fieldNames()); diff != "" {
					t.Errorf("fields (-want +got)\n%s\n%+v", diff, e)
				}
				if msg := e.Fields[len(e.Fields)-1].Message; !strings.Contains(msg, "envplane server age-recipient") {
					t.Errorf("hint: %q", msg)
				}
			}
			// A change of server-side secrets resolves again, with the
			// file as it was opened.
			h.must(200, "PUT", secretsPath+"UNUSED", adminToken, map[string]any{"value": "x"})
			h.must(409, "GET", "/api/v1/environments/staging/config", adminToken, nil)
			if n := strings.Count(logs.String(), tt.log); n != 2 { // staging's and production's file, at upload
				t.Errorf("%d log lines %q, want 2 (one a file):\n%s", n, tt.log, logs.String())
			}
			id := h.openPromotion(rel)
			p := h.waitState(id, "failed")
			var refs string
			for _, c := range p.Gates.Checks {
				if c.Name == "references" {
					refs = c.Message
				}
			}
			for _, w := range []string{"secrets/production.enc.yaml is not opened on the server", "DB_PASSWORD"} {
				if !strings.Contains(refs, w) {
					t.Errorf("references check %q does not say %q", refs, w)
				}
			}
		})
	}
}

// tamper changes the sealed file's lastmodified, which its MAC covers.
func tamper(t testing.TB, file string) string {
	t.Helper()
	re := regexp.MustCompile(`lastmodified: "[^"]*"`)
	if !re.MatchString(file) {
		t.Fatalf("no lastmodified in\n%s", file)
	}
	return re.ReplaceAllString(file, `lastmodified: "2001-01-01T00:00:00Z"`)
}

// TestWorkspaceSecretsTampered: a secrets file that fails its MAC is
// refused on upload by a server that can open it, and a stored release
// holding one (uploaded while the server could not check it) makes the
// environment's config fail like other release problems. Neither says a
// value.
func TestWorkspaceSecretsTampered(t *testing.T) {
	srvID, dev := newIdentity(t), newIdentity(t)
	files := vaulted(t, srvID.Recipient().String(), dev.Recipient().String())
	files["secrets/staging.enc.yaml"] = tamper(t, files["secrets/staging.enc.yaml"])
	files["secrets/production.enc.yaml"] = tamper(t, files["secrets/production.enc.yaml"])

	var logs syncBuffer
	h := start(t, withIdentity(&logs, srvID))
	r := h.must(400, "POST", "/api/v1/releases", adminToken, map[string]any{"files": files})
	e := r.err(t)
	if diff := cmp.Diff([]string{"files.secrets/production.enc.yaml", "files.secrets/staging.enc.yaml"}, e.fieldNames()); diff != "" || !strings.Contains(e.Fields[0].Message, "authentication failed") {
		t.Errorf("upload: %+v (fields -want +got)\n%s", e, diff)
	}

	// Stored by a server without the identity, served by one with it.
	var before syncBuffer
	old := start(t, withIdentity(&before))
	rel := old.upload(files)
	old.setRelease("staging", rel)
	old.setRelease("development", rel)
	old.srv.Close()
	old.hs.Close()
	old.st.Close()
	h = startOn(t, mustOpen(t, old.dbPath), withIdentity(&logs, srvID))
	e = h.must(409, "GET", "/api/v1/environments/staging/config", adminToken, nil).err(t)
	if diff := cmp.Diff([]string{"files.secrets/staging.enc.yaml"}, e.fieldNames()); diff != "" || !strings.Contains(e.Fields[0].Message, "authentication failed") {
		t.Errorf("config: %+v (fields -want +got)\n%s", e, diff)
	}
	h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	h.must(409, "GET", "/api/v1/environments/staging/explain?key=database.url", adminToken, nil)
	// The promotion checks of production see its file fail too.
	p := h.waitState(h.openPromotion(rel), "failed")
	failed := 0
	for _, c := range p.Gates.Checks {
		if c.Status != "failed" {
			continue // the first failure decides
		}
		failed++
		if !strings.Contains(c.Message, "secrets/production.enc.yaml") || !strings.Contains(c.Message, "authentication failed") {
			t.Errorf("check %s: %q", c.Name, c.Message)
		}
		r.body = append(r.body, c.Message...)
	}
	if failed == 0 {
		t.Errorf("no check failed: %+v", p.Gates.Checks)
	}
	for what, text := range map[string]string{"responses": string(r.body), "logs": logs.String() + before.String()} {
		if strings.Contains(text, fileCanary) {
			t.Errorf("the %s show a secret value:\n%s", what, text)
		}
	}
}

// TestWorkspaceSecretsCanary drives every read of a config built from a
// workspace secrets file, the promotion checks, the logs and the audit log:
// the file's value shows only in reveals.
func TestWorkspaceSecretsCanary(t *testing.T) {
	srvID, dev := newIdentity(t), newIdentity(t)
	var logs syncBuffer
	h := start(t, withIdentity(&logs, srvID))
	files := vaulted(t, srvID.Recipient().String(), dev.Recipient().String())
	// A failing policy, and a secret that cannot be an integer, make the
	// checks and the config report problems around the value.
	files["envplane.yaml"] = strings.Replace(files["envplane.yaml"], `config.database.host != "localhost"`, `config.database.url == "x"`, 1)
	rel := h.upload(files)
	h.setRelease("development", rel)
	h.setRelease("staging", rel)
	viewer, _ := h.token("viewer", "viewer")
	var bodies []string
	for _, path := range []string{
		"/api/v1/environments/staging/config",
		"/api/v1/environments/staging/config?reveal=true", // a viewer may not reveal
		"/api/v1/environments/staging/explain?key=database.url",
		"/api/v1/environments/staging/explain?key=database.password&reveal=true",
		"/api/v1/environments/staging/diff/development",
		"/api/v1/environments/development/diff/staging?reveal=true",
		"/api/v1/environments/staging/config?service=nope",
	} {
		r := h.call("GET", path, viewer, nil)
		bodies = append(bodies, path+" → "+string(r.body))
	}
	id := h.openPromotion(rel)
	p := h.waitState(id, "failed")
	if !strings.Contains(strings.Join([]string{p.Gates.Checks[0].Message, p.Gates.Checks[1].Message}, " "), "production needs a real database host") {
		t.Errorf("the policy check did not fail: %+v", p.Gates.Checks)
	}
	bodies = append(bodies, string(h.must(200, "GET", "/api/v1/promotions/"+id, adminToken, nil).body))
	bodies = append(bodies, string(h.must(200, "GET", "/api/v1/audit", adminToken, nil).body))
	for _, b := range bodies {
		if strings.Contains(b, fileCanary) {
			t.Errorf("shows the secrets file's value: %s", b)
		}
	}
	if strings.Contains(logs.String(), fileCanary) {
		t.Errorf("the logs show the secrets file's value:\n%s", logs.String())
	}
	// The canary is there to be found: an admin's reveal shows it.
	if r := h.must(200, "GET", "/api/v1/environments/staging/config?reveal=true", adminToken, nil); !bytes.Contains(r.body, []byte(fileCanary)) {
		t.Errorf("reveal does not show the value: %s", r.body)
	}
}

// TestServeAgeIdentityFile: `envplane serve` takes its age identity from
// ENVPLANE_AGE_IDENTITY_FILE (0600, as `keys generate --out` writes it),
// logs the recipient it answers to, and serves the --workspace release's
// secrets file sealed for it; age-recipient prints that recipient.
func TestServeAgeIdentityFile(t *testing.T) {
	t.Chdir(t.TempDir())
	code, recipient, stderr := runCLI(nil, "keys", "generate", "--out", "server-age.txt")
	recipient = strings.TrimSpace(recipient)
	if code != 0 || !strings.HasPrefix(recipient, "age1") {
		t.Fatalf("keys generate: %d %q %s", code, recipient, stderr)
	}
	code, printed, stderr := runCLI(map[string]string{"ENVPLANE_AGE_IDENTITY_FILE": "server-age.txt"}, "server", "age-recipient")
	if code != 0 || printed != recipient+"\n" {
		t.Fatalf("server age-recipient: %d %q %s; want %s", code, printed, stderr, recipient)
	}
	dir := filepath.Join(t.TempDir(), "ws")
	files := vaulted(t, recipient, newIdentity(t).Recipient().String())
	files["envplane.yaml"] = strings.Replace(files["envplane.yaml"], "  - development\n", "", 1) // staging first: --workspace makes it current
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"ENVPLANE_BOOTSTRAP_TOKEN": adminToken, "ENVPLANE_ADDR": "127.0.0.1:0", "ENVPLANE_AGE_IDENTITY_FILE": "server-age.txt"}
	stop, base := serveCLI(t, env, "serve", "--workspace", dir)
	url, out := base()
	if !strings.Contains(out, recipient) {
		t.Errorf("serve does not log its recipient:\n%s", out)
	}
	status, cfg := apiCall(t, "GET", url+"/api/v1/environments/staging/config", nil)
	if want := map[string]any{"database": map[string]any{"host": "<redacted>", "password": "<redacted>", "url": "<redacted>"}}; status != 200 || !cmp.Equal(want, cfg) {
		t.Errorf("config: %d %v", status, cfg)
	}
	status, cfg = apiCall(t, "GET", url+"/api/v1/environments/staging/config?reveal=true", nil)
	if db, _ := cfg["database"].(map[string]any); status != 200 || db["password"] != fileCanary {
		t.Errorf("revealed config: %d %v", status, cfg)
	}
	if code, out := stop(); code != 0 || strings.Contains(out, fileCanary) || strings.Contains(out, "AGE-SECRET-KEY") {
		t.Errorf("serve exited %d, or its output shows a secret:\n%s", code, out)
	}
}
