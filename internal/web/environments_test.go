package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/domain"
)

func TestEnvironmentPage(t *testing.T) {
	h := seeded(t)
	admin := h.signIn(adminToken)
	body := admin.must("/environments/staging")
	for _, want := range []string{
		"<h1>Environment staging</h1>",
		`<dd id="release"><code title="` + h.release + `">` + h.release + `</code>`,
		`<table id="history">`, "git.sha=abc1234",
		`href="/explain?env=staging&amp;key=database.host"`, "db.staging",
		`href="/environments/staging/flags"`, `href="/environments/staging/secrets"`,
		// the top navigation: every environment, Flags and Secrets of this one
		`class="nav-env" href="/environments/staging" aria-current="page"`, `class="nav-env" href="/environments/production"`,
		`data-live="staging"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("staging's page lacks %q", want)
		}
	}
	// Redacted like the matrix: neither the server-side secret nor the
	// sensitive literal.
	for _, env := range []string{"staging", "development"} {
		if b := admin.must("/environments/" + env); strings.Contains(b, canary) || strings.Contains(b, literal) {
			t.Errorf("%s's page shows a sensitive value", env)
		}
	}
	// staging takes releases directly: no promotion form.
	if strings.Contains(body, "/environments/staging/promote") {
		t.Error("a promotion form on an environment without a promotion block")
	}
	prod := admin.must("/environments/production")
	for _, want := range []string{`action="/environments/production/promote"`, `action="/environments/production/rollback"`,
		`value="` + h.release + `"`, "through promotions from staging", "No release set yet."} {
		if !strings.Contains(prod, want) {
			t.Errorf("production's page lacks %q", want)
		}
	}
	if st, _ := admin.get("/environments/nowhere"); st != http.StatusNotFound {
		t.Errorf("unknown environment: %d", st)
	}
	if st, _ := admin.get("/environments/staging?service=nope"); st != http.StatusBadRequest {
		t.Errorf("unknown service: %d", st)
	}
}

func TestEnvironmentPageAuthorization(t *testing.T) {
	h := seeded(t)
	dev := h.signIn(h.token("dev", "viewer", []string{"development"}))
	if st, _ := dev.get("/environments/staging"); st != http.StatusForbidden {
		t.Errorf("development's viewer read staging's page: %d", st)
	}
	body := dev.must("/environments/development")
	if strings.Contains(body, `href="/environments/staging"`) {
		t.Error("the navigation links an environment the token may not see")
	}
	viewer := h.signIn(h.token("vi", "viewer", nil))
	if b := viewer.must("/environments/production"); strings.Contains(b, "/promote") || strings.Contains(b, "/rollback") {
		t.Error("a viewer sees the promotion forms")
	}
	if st, _ := viewer.post("/environments/production/promote", url.Values{"release": {h.release}}); st != http.StatusForbidden {
		t.Errorf("viewer promoted: %d", st)
	}
	if st, _ := viewer.post("/environments/production/rollback", nil); st != http.StatusForbidden {
		t.Errorf("viewer rolled back: %d", st)
	}
	admin := h.signIn(adminToken)
	if st, _ := admin.post("/environments/production/promote", url.Values{"release": {h.release}, "csrf": {"stale"}}); st != http.StatusForbidden {
		t.Errorf("stale CSRF: %d", st)
	}
	if st, _ := h.anon().post("/environments/production/promote", url.Values{"release": {h.release}}); st != http.StatusForbidden && st != http.StatusUnauthorized {
		t.Errorf("signed out: %d", st)
	}
	if n := h.promotionCount(); n != 0 {
		t.Errorf("%d promotions opened by refused requests", n)
	}
}

func (h *harness) promotionCount() int {
	h.t.Helper()
	all, err := h.app.ListPromotions(context.Background(), h.sys, domain.PromotionFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	return len(all)
}

func TestEnvironmentPromoteAndRefusals(t *testing.T) {
	h := seeded(t)
	admin := h.signIn(adminToken)
	// Refusals keep the page and say why, with the App's status.
	st, body := admin.post("/environments/production/rollback", nil)
	if st != http.StatusConflict || !strings.Contains(body, `id="refusal"`) || !strings.Contains(body, "no previous release") {
		t.Errorf("rollback without history: %d\n%s", st, body)
	}
	st, body = admin.post("/environments/production/promote", url.Values{"release": {"rel_nope"}})
	if st != http.StatusNotFound || !strings.Contains(body, "Refused: ") || !strings.Contains(body, `value="rel_nope"`) {
		t.Errorf("unknown release: %d\n%s", st, body)
	}
	if st, body := admin.post("/environments/staging/promote", url.Values{"release": {h.release}}); st != http.StatusConflict || !strings.Contains(body, "no promotion block") {
		t.Errorf("promotion into a directly-set environment: %d\n%s", st, body)
	}
	ana := h.signIn(h.token("ana", "approver", nil, "devops"))
	st, _ = ana.post("/environments/production/promote", url.Values{"release": {h.release}})
	if st != http.StatusSeeOther || h.promotionCount() != 1 {
		t.Fatalf("approver's promotion: %d, %d open", st, h.promotionCount())
	}
	if b := ana.must("/promotions"); !strings.Contains(b, "requested by ana") {
		t.Error("the promotion is not the approver's")
	}
}

func TestEnvironmentPageServices(t *testing.T) {
	h, _ := arkaUI(t)
	admin := h.signIn(adminToken)
	body := admin.must("/environments/development")
	for _, want := range []string{`<option>api</option>`, `<option>rtvm</option>`, `<option value="">(no service)</option>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the service selector lacks %q", want)
		}
	}
	api := admin.must("/environments/development?service=api")
	if !strings.Contains(api, `<option selected>api</option>`) || !strings.Contains(api, "&amp;service=api") {
		t.Error("the api service's page does not keep its service in the selector and the explain links")
	}
	if strings.Contains(api, `class="bad"`) {
		t.Errorf("the api service's config does not show:\n%s", api)
	}
}
