package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/app"
)

// timed is a workspace whose production takes releases from development
// after a one-hour wait timer, and nothing else.
func timed(port string) map[string][]byte {
	return map[string][]byte{
		"envplane.yaml": []byte(`name: timed
environments:
  - name: development
    data: synthetic
    protection: open
  - name: production
    data: live
    protection: restricted
    promotion:
      from: development
      waitTimer: 1h
config:
  layers:
    - config/default.yaml
`),
		"config/default.yaml": []byte("server:\n  port: " + port + "\n"),
	}
}

// gated starts a server whose production ran release one, then runs
// release two (both through emergency promotions, which skip the timer).
func gated(t *testing.T) (h *harness, one, two string) {
	h = start(t)
	ctx := context.Background()
	for i, port := range []string{"8080", "9090"} {
		id := h.upload(timed(port), nil)
		if _, err := h.app.SetRelease(ctx, h.sys, "development", id); err != nil {
			t.Fatal(err)
		}
		if _, err := h.app.Promote(ctx, h.sys, app.PromoteRequest{Release: id, Environment: "production", Emergency: true}); err != nil {
			t.Fatal(err)
		}
		h.waitRelease("production", id)
		if i == 0 {
			one = id
		} else {
			two = id
		}
	}
	return h, one, two
}

func TestEmergencyRollback(t *testing.T) {
	h, one, two := gated(t)
	editor := h.signIn(h.token("eddie", "editor", nil))
	if body := editor.must("/environments/production"); strings.Contains(body, "emergency-link") || !strings.Contains(body, "rollback-form") {
		t.Fatal("an editor is offered the emergency rollback (or not the plain one)")
	}
	if st, _ := editor.get("/environments/production/rollback/emergency"); st != http.StatusForbidden {
		t.Errorf("editor's confirmation page: %d, want 403", st)
	}
	if st, _ := editor.post("/environments/production/rollback", url.Values{"emergency": {"1"}, "confirm": {"production"}}); st != http.StatusForbidden {
		t.Errorf("editor's emergency rollback: %d, want 403", st)
	}

	admin := h.signIn(adminToken)
	if body := admin.must("/environments/production"); !strings.Contains(body, `href="/environments/production/rollback/emergency"`) {
		t.Fatal("an admin is not offered the emergency rollback")
	}
	body := admin.must("/environments/production/rollback/emergency")
	if !strings.Contains(body, `id="rb-previous">`+one) || !strings.Contains(body, "the wait timer only") {
		t.Fatalf("confirmation page: %s", body)
	}
	if st, _ := admin.post("/environments/production/rollback", url.Values{"csrf": {"nope"}, "emergency": {"1"}, "confirm": {"production"}}); st != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d, want 403", st)
	}
	st, body := admin.post("/environments/production/rollback", url.Values{"emergency": {"1"}, "confirm": {"prod"}})
	if st != http.StatusUnprocessableEntity || !strings.Contains(body, `id="confirm-error"`) || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("a wrong confirmation: %d %s", st, body)
	}
	if e := h.environment("production"); e.Release != two {
		t.Fatal("a refused rollback changed production")
	}
	form := url.Values{"emergency": {"1"}, "confirm": {"production"}, "csrf": {admin.csrf}}
	req, _ := http.NewRequest("POST", h.hs.URL+"/environments/production/rollback", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := admin.do(req)
	id, ok := strings.CutPrefix(resp.Header.Get("Location"), "/promotions#")
	if resp.StatusCode != http.StatusSeeOther || !ok {
		t.Fatalf("emergency rollback: %d to %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	// The wait timer is skipped: production runs release one again.
	h.waitRelease("production", one)
	pr, err := h.app.GetPromotion(t.Context(), h.sys, id)
	if err != nil || !pr.Rollback || !pr.Emergency || pr.Release != one || !strings.HasPrefix(pr.RequestedBy, "bootstrap") {
		t.Fatalf("the promotion opened: %+v %v", pr, err)
	}
	if audit := admin.must("/audit"); !strings.Contains(audit, id) {
		t.Error("the audit log does not show the emergency rollback")
	}
}

// environment is env as the server has it now.
func (h *harness) environment(env string) (e struct{ Release string }) {
	for _, x := range h.srv.Environments() {
		if x.Name == env {
			e.Release = x.Release
		}
	}
	return e
}
