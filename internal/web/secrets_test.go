package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/domain"
)

// reveals counts the audit entries of reveals of staging's DB_PASSWORD.
func (h *harness) reveals() int {
	h.t.Helper()
	entries, _, err := h.app.ListAudit(context.Background(), h.sys, 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Action == string(domain.ActionSecretReveal) && e.Target == "staging/DB_PASSWORD" {
			n++
		}
	}
	return n
}

func TestSecretsPageShowsNoValueUntilRevealed(t *testing.T) {
	h := seeded(t)
	admin := h.signIn(adminToken)
	body := admin.must("/environments/staging/secrets")
	if !strings.Contains(body, `id="secret-DB_PASSWORD"`) || !strings.Contains(body, "Reveal (audited)") {
		t.Fatalf("secrets page:\n%s", body)
	}
	if strings.Contains(body, canary) {
		t.Fatal("the secrets page shows a value before any reveal")
	}
	if n := h.reveals(); n != 0 {
		t.Fatalf("%d reveals audited before any", n)
	}
	st, body := admin.post("/environments/staging/secrets/DB_PASSWORD/reveal", nil)
	if st != http.StatusOK || !strings.Contains(body, `<code id="revealed-value">`+canary+`</code>`) {
		t.Fatalf("reveal: %d\n%s", st, body)
	}
	if strings.Contains(body, "data-live=") {
		t.Error("the revealed page reloads itself live")
	}
	if n := h.reveals(); n != 1 {
		t.Errorf("%d audit entries for one reveal, want 1", n)
	}
	// Shown once: the page again has no value.
	if body := admin.must("/environments/staging/secrets"); strings.Contains(body, canary) {
		t.Error("the value stays on the page after the reveal")
	}
	if st, _ := admin.post("/environments/staging/secrets/NOPE/reveal", nil); st != http.StatusNotFound {
		t.Errorf("unknown secret: %d", st)
	}
}

func TestSecretRevealRefused(t *testing.T) {
	h := seeded(t)
	viewer := h.signIn(h.token("vi", "viewer", nil))
	body := viewer.must("/environments/staging/secrets")
	if !strings.Contains(body, "DB_PASSWORD") || strings.Contains(body, "Reveal") || strings.Contains(body, canary) {
		t.Fatalf("viewer's secrets page:\n%s", body)
	}
	if st, body := viewer.post("/environments/staging/secrets/DB_PASSWORD/reveal", nil); st != http.StatusForbidden || strings.Contains(body, canary) {
		t.Errorf("viewer revealed: %d", st)
	}
	editor := h.signIn(h.token("ed", "editor", []string{"staging"}))
	if st, body := editor.post("/environments/staging/secrets/DB_PASSWORD/reveal", nil); st != http.StatusForbidden || strings.Contains(body, canary) {
		t.Errorf("editor revealed: %d", st)
	}
	admin := h.signIn(adminToken)
	if st, body := admin.post("/environments/staging/secrets/DB_PASSWORD/reveal", map[string][]string{"csrf": {"stale"}}); st != http.StatusForbidden || strings.Contains(body, canary) {
		t.Errorf("stale CSRF revealed: %d", st)
	}
	if st, _ := h.signIn(h.token("dev", "viewer", []string{"development"})).get("/environments/staging/secrets"); st != http.StatusForbidden {
		t.Errorf("development's viewer listed staging's secrets: %d", st)
	}
	if n := h.reveals(); n != 0 {
		t.Errorf("%d reveals audited, want none", n)
	}
}
