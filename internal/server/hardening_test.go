package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/server"
	"github.com/google/go-cmp/cmp"
)

// envDefs lists the environments as the API shows them.
func envDefs(t *testing.T, h *harness) map[string]string {
	t.Helper()
	var list struct {
		Environments []struct {
			Name, Protection, Data string
			Promoted               bool
		} `json:"environments"`
	}
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/environments", adminToken, nil).body, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range list.Environments {
		out[e.Name] = e.Protection + "/" + e.Data + map[bool]string{true: "/promoted", false: ""}[e.Promoted]
	}
	return out
}

// TestUploadChangesNoEnvironment: storing a release changes no environment's
// definition; an environment takes the definition of the release made
// current in it; only an unscoped token brings new environments into being.
func TestUploadChangesNoEnvironment(t *testing.T) {
	h, _ := seeded(t)
	before := map[string]string{"development": "open/synthetic", "staging": "guarded/anonymized", "production": "restricted/live/promoted"}
	if diff := cmp.Diff(before, envDefs(t, h)); diff != "" {
		t.Fatalf("definitions (-want +got):\n%s", diff)
	}
	devEditor, _ := h.token("dev-editor", "editor", "development")

	// A development editor rewrites production (open, synthetic, no gate)
	// and staging: stored, and nothing changes.
	hostile := shop(8080)
	hostile["envplane.yaml"] = strings.NewReplacer(
		"    data: live\n    protection: restricted\n    promotion: { from: staging }\n", "    data: synthetic\n    protection: open\n",
		"    data: anonymized\n    protection: guarded\n", "    data: live\n    protection: restricted\n",
	).Replace(hostile["envplane.yaml"])
	r := h.must(201, "POST", "/api/v1/releases", devEditor, map[string]any{"files": hostile})
	hostileID := r.json(t)["id"].(string)
	if diff := cmp.Diff(before, envDefs(t, h)); diff != "" {
		t.Errorf("an upload changed definitions (-want +got):\n%s", diff)
	}
	// Production still takes releases only through promotions.
	h.must(409, "PUT", "/api/v1/environments/production/release", adminToken, map[string]string{"release": hostileID})

	// Making the release current in staging (an admin's direct set) is what
	// changes staging's definition; the others stay.
	h.setRelease("staging", hostileID)
	want := map[string]string{"development": "open/synthetic", "staging": "restricted/live", "production": "restricted/live/promoted"}
	if diff := cmp.Diff(want, envDefs(t, h)); diff != "" {
		t.Errorf("after set-release (-want +got):\n%s", diff)
	}

	// New environments: refused for a scoped token, naming them; created
	// for an unscoped one.
	withQA := shop(8080)
	withQA["envplane.yaml"] = strings.Replace(withQA["envplane.yaml"], "environments:\n", "environments:\n  - name: qa\n", 1)
	e := h.must(403, "POST", "/api/v1/releases", devEditor, map[string]any{"files": withQA}).err(t)
	if !strings.Contains(e.Message, `"qa"`) {
		t.Errorf("refusal does not name the new environment: %s", e.Message)
	}
	if _, ok := envDefs(t, h)["qa"]; ok {
		t.Fatal("a refused upload created qa")
	}
	editor, _ := h.token("editor", "editor")
	h.must(201, "POST", "/api/v1/releases", editor, map[string]any{"files": withQA})
	if got := envDefs(t, h)["qa"]; got != "open/synthetic" {
		t.Errorf("qa = %q after an unscoped upload", got)
	}
}

// TestReleaseFilesNeedFullScope: a release's files hold every environment's
// config, so only a token scoped to all of them reads them.
func TestReleaseFilesNeedFullScope(t *testing.T) {
	h, id := seeded(t)
	devViewer, _ := h.token("dev-viewer", "viewer", "development")
	viewer, _ := h.token("viewer", "viewer")
	all, _ := h.token("all-three", "viewer", "development", "staging", "production")
	for _, c := range []struct {
		token string
		files bool
	}{{devViewer, false}, {viewer, true}, {all, true}, {adminToken, true}} {
		m := h.must(200, "GET", "/api/v1/releases/"+id, c.token, nil).json(t)
		if _, has := m["files"]; has != c.files {
			t.Errorf("files shown = %v, want %v", has, c.files)
		}
		if m["digest"] == nil {
			t.Error("metadata missing")
		}
	}
}

// auditActions returns the audit entries of action, as the API shows them.
func auditOf(t *testing.T, h *harness, token, action string) []map[string]any {
	t.Helper()
	var list struct {
		Entries []struct {
			Action  string
			Target  string
			Details map[string]any
		} `json:"entries"`
	}
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/audit?limit=1000", token, nil).body, &list); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range list.Entries {
		if action == "" || e.Action == action {
			e.Details["target"] = e.Target
			out = append(out, e.Details)
		}
	}
	return out
}

// TestRevealsAreAudited: every answer that shows hidden values — config,
// explain, diff — leaves one audit entry naming what it showed, never the
// value; answers that show nothing hidden leave none.
func TestRevealsAreAudited(t *testing.T) {
	h, _ := seeded(t)
	viewer, _ := h.token("viewer", "viewer")
	count := func() int { return len(auditOf(t, h, adminToken, "config.reveal")) }

	h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	h.must(200, "GET", "/api/v1/environments/development/config?reveal=true", viewer, nil) // not allowed: redacted
	h.must(200, "GET", "/api/v1/environments/development/explain?key=logging.level&reveal=true", adminToken, nil)
	if n := count(); n != 0 {
		t.Fatalf("%d reveal entries for answers that showed nothing hidden", n)
	}

	r := h.must(200, "GET", "/api/v1/environments/development/config?reveal=true", adminToken, nil)
	if !strings.Contains(string(r.body), "dev-secret-pass") {
		t.Fatal("reveal did not reveal")
	}
	h.must(200, "GET", "/api/v1/environments/development/explain?key=database.password&reveal=true", adminToken, nil)
	h.must(200, "GET", "/api/v1/environments/development/diff/staging?reveal=true", adminToken, nil)
	entries := auditOf(t, h, adminToken, "config.reveal")
	var got []string
	for _, e := range entries {
		got = append(got, e["via"].(string)+":"+e["environment"].(string))
	}
	if diff := cmp.Diff([]string{"config:development", "explain:development", "diff:development", "diff:staging"}, got); diff != "" {
		t.Errorf("reveal entries (-want +got):\n%s", diff)
	}
	if keys, _ := json.Marshal(entries[0]["keys"]); !strings.Contains(string(keys), "database.password") {
		t.Errorf("config reveal does not name what it showed: %s", keys)
	}
	all, _ := json.Marshal(auditOf(t, h, adminToken, ""))
	if strings.Contains(string(all), "dev-secret-pass") {
		t.Error("a revealed value is in the audit log")
	}

	// An SDK key's reads are summed, and written at the latest when the
	// server stops.
	sdk, _ := h.token("app", "sdk", "development")
	for range 3 {
		h.must(200, "GET", "/api/v1/environments/development/config?reveal=true", sdk, nil)
	}
	if n := count(); n != 4 {
		t.Errorf("SDK reads wrote entries at once: %d", n)
	}
	h.srv.Close()
	last, ok, err := h.st.LastAudit(context.Background())
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var d map[string]any
	_ = json.Unmarshal(last.Details, &d)
	if last.Action != "config.reveal" || d["requests"] != float64(3) || !strings.HasPrefix(last.Actor, "app ") {
		t.Errorf("summed SDK reveal: %s %s %s", last.Action, last.Actor, last.Details)
	}
}

// TestScopedAdminSeesItsOwn: an admin scoped to development lists only the
// tokens and audit entries of development.
func TestScopedAdminSeesItsOwn(t *testing.T) {
	h, _ := seeded(t)
	devAdmin, _ := h.token("dev-admin", "admin", "development")
	h.token("prod-viewer", "viewer", "production")
	h.token("dev-viewer", "viewer", "development")
	h.must(200, "PUT", "/api/v1/environments/staging/secrets/S", adminToken, map[string]string{"value": "x"})
	h.must(200, "PUT", "/api/v1/environments/development/secrets/D", adminToken, map[string]string{"value": "y"})

	var tokens struct{ Tokens []struct{ Name string } }
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/tokens", devAdmin, nil).body, &tokens); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range tokens.Tokens {
		names = append(names, tk.Name)
	}
	if diff := cmp.Diff([]string{"dev-admin", "dev-viewer"}, names); diff != "" {
		t.Errorf("tokens a development admin sees (-want +got):\n%s", diff)
	}
	for _, e := range auditOf(t, h, devAdmin, "") {
		envs := environmentsIn(e)
		if len(envs) == 0 {
			t.Errorf("a development admin sees an entry about no environment: %v", e)
		}
		for _, env := range envs {
			if env != "development" {
				t.Errorf("a development admin sees an entry about %s: %v", env, e)
			}
		}
	}
	if n := len(auditOf(t, h, devAdmin, "secret.set")); n != 1 {
		t.Errorf("%d secret.set entries, want development's one", n)
	}
	// Entries about development by any action: its set-release, a token of
	// its own deleted.
	_, devTok := h.token("dev-temp", "viewer", "development")
	h.must(204, "DELETE", "/api/v1/tokens/"+devTok, adminToken, nil)
	for _, action := range []string{"environment.set-release", "token.delete"} {
		if n := len(auditOf(t, h, devAdmin, action)); n != 1 {
			t.Errorf("%d %s entries for a development admin, want 1", n, action)
		}
	}
}

func environmentsIn(details map[string]any) []string {
	var out []string
	if e, ok := details["environment"].(string); ok {
		out = append(out, e)
	}
	if details["target"] == "development" && len(out) == 0 {
		out = append(out, "development") // a set-release written before details named it
	}
	if l, ok := details["environments"].([]any); ok {
		for _, e := range l {
			out = append(out, e.(string))
		}
	}
	return out
}

// TestRequestBounds: invalid UTF-8 is refused, never replaced, and token
// scopes are bounded.
func TestRequestBounds(t *testing.T) {
	h, _ := seeded(t)
	many := make([]string, 65)
	for i := range many {
		many[i] = "g" + itoa(i)
	}
	runCases(t, h, []apiCase{
		{name: "token name not UTF-8", method: "POST", path: "/api/v1/tokens", body: "{\"name\":\"ci\xff\",\"role\":\"viewer\"}", status: 400, fields: []string{"body"}},
		{name: "secret not UTF-8", method: "PUT", path: "/api/v1/environments/development/secrets/S", body: "{\"value\":\"a\xc3\x28b\"}", status: 400, fields: []string{"body"}},
		{name: "too many groups", method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "g", "role": "approver", "groups": many}, status: 400, fields: []string{"groups"}},
		{name: "too many environments", method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "e", "role": "viewer", "environments": many}, status: 400, fields: []string{"environments"}},
	})
	// Nothing was stored with a replacement character.
	if all, _ := json.Marshal(auditOf(t, h, adminToken, "")); strings.Contains(string(all), "\ufffd") {
		t.Error("a replacement character reached the audit log")
	}
}

// TestReleaseValidationBounds: a workspace with more environments than the
// limit is refused naming envplane.yaml, before anything is resolved.
func TestReleaseValidationBounds(t *testing.T) {
	h := start(t)
	var b strings.Builder
	b.WriteString("environments:\n")
	for i := range 65 {
		b.WriteString("  - name: e" + itoa(i) + "\n")
	}
	e := h.must(400, "POST", "/api/v1/releases", adminToken, map[string]any{"files": map[string]string{"envplane.yaml": b.String()}}).err(t)
	if len(e.Fields) != 1 || e.Fields[0].Field != "files.envplane.yaml" || !strings.Contains(e.Fields[0].Message, "at most 64") {
		t.Errorf("error: %+v", e)
	}
}

// TestEventStreamEndsWhenTokenRevoked: deleting a token ends its streams.
func TestEventStreamEndsWhenTokenRevoked(t *testing.T) {
	h, _ := seeded(t)
	sdk, id := h.token("app", "sdk", "development")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.hs.URL+"/api/v1/environments/development/events", nil)
	req.Header.Set("Authorization", "Bearer "+sdk)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatal("no first line")
	}
	// Another token's change does not end it: the next change still
	// arrives on it.
	_, other := h.token("other", "viewer")
	h.must(204, "DELETE", "/api/v1/tokens/"+other, adminToken, nil)
	h.setRelease("development", h.upload(shop(8181)))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "event: ") {
			if line != "event: release" {
				t.Fatalf("stream said %q after another token's revocation", line)
			}
			break
		}
	}
	began := time.Now()
	h.must(204, "DELETE", "/api/v1/tokens/"+id, adminToken, nil)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("stream ended %v after the revocation", took)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "event: revoked") {
		t.Errorf("stream lines: %q", lines)
	}
}

// TestSecretEscapesDecodeExactly: a lone surrogate escape would decode to
// U+FFFD; the value is refused instead of altered.
func TestSecretEscapesDecodeExactly(t *testing.T) {
	h, _ := seeded(t)
	runCases(t, h, []apiCase{
		{name: "lone surrogate", method: "PUT", path: "/api/v1/environments/development/secrets/S", body: `{"value":"a\ud800b"}`, status: 400, fields: []string{"value"}},
		{name: "valid pair", method: "PUT", path: "/api/v1/environments/development/secrets/S", body: `{"value":"a\ud83d\ude00b"}`, status: 200},
	})
}

// TestRevealsInsideListsAreAudited: hidden values inside a list, or among
// the values a key overrode, count as revealed; a sensitive key's template
// shows its references only.
func TestRevealsInsideListsAreAudited(t *testing.T) {
	h := start(t)
	files := shop(8080)
	files["config/default.yaml"] += "alerts:\n  channels:\n    - name: ops\n      apikey: DEFAULTKEY789\n"
	files["config/development.yaml"] += "alerts:\n  channels: []\ntoken: hunter2-${HOME_HOST:-localhost}\n"
	files["config/staging.yaml"] = "logging:\n  level: warn\nalerts:\n  channels:\n    - name: ops\n      apikey: STAGINGKEY456\n"
	id := h.upload(files)
	h.setRelease("development", id)
	h.setRelease("staging", id)
	count := func() int { return len(auditOf(t, h, adminToken, "config.reveal")) }

	// Without reveal, neither the value nor the template's text shows.
	r := h.must(200, "GET", "/api/v1/environments/development/explain?key=token", adminToken, nil)
	if strings.Contains(string(r.body), "hunter2") || !strings.Contains(string(r.body), "${HOME_HOST:-<redacted>}") {
		t.Errorf("explain of a sensitive key without reveal: %s", r.body)
	}
	r = h.must(200, "GET", "/api/v1/environments/development/explain?key=alerts.channels&reveal=true", adminToken, nil)
	if !strings.Contains(string(r.body), "DEFAULTKEY789") {
		t.Fatalf("the overridden list was not revealed: %s", r.body)
	}
	if n := count(); n != 1 {
		t.Errorf("%d entries after revealing an overridden list with a hidden value, want 1", n)
	}
	r = h.must(200, "GET", "/api/v1/environments/development/diff/staging?reveal=true", adminToken, nil)
	if !strings.Contains(string(r.body), "STAGINGKEY456") {
		t.Fatalf("the diff did not reveal: %s", r.body)
	}
	if n := count(); n != 3 {
		t.Errorf("%d entries after a diff revealing a list, want 3", n)
	}
}

// TestBootstrapTokenMustLookLikeAToken: a bootstrap token that could never
// authenticate is refused at start.
func TestBootstrapTokenMustLookLikeAToken(t *testing.T) {
	h := start(t)
	_, err := server.New(context.Background(), server.Options{Store: h.st, BootstrapToken: "xx_abcdefghijklmnopqrstuvwxyz", Audit: app.AuditOptions{Chain: testChain(t)}})
	if err == nil || !strings.Contains(err.Error(), "ep_") {
		t.Errorf("err = %v", err)
	}
}
