package web_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestEditAndRemoveTargeting(t *testing.T) {
	h := flagged(t)
	ed := h.signIn(h.token("eddie", "editor", []string{"development"}))
	path := "/environments/development/flags/banner/targeting"
	rule := `{"if":[{"==":[{"var":"plan"},"pro"]},"loud",null]}`

	for _, tt := range []struct{ name, text, want string }{
		{"not JSON", `{"if":`, "not JSON"},
		{"empty", ``, "{} for no targeting"},
		{"unknown operator", `{"nope":[1]}`, "nope"},
	} {
		st, body := ed.post(path, url.Values{"targeting": {tt.text}})
		if st != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", tt.name, st)
			continue
		}
		m := strings.Index(body, `id="targeting-banner-error"`)
		if m < 0 || !strings.Contains(html.UnescapeString(body[m:]), tt.want) || !strings.Contains(body, `aria-describedby="targeting-banner-error"`) {
			t.Errorf("%s: the problem (%q) is not shown at the banner's field", tt.name, tt.want)
		}
		if tt.text != "" && !strings.Contains(html.UnescapeString(body), ">"+tt.text+"</textarea>") {
			t.Errorf("%s: the posted text is not kept", tt.name)
		}
	}
	if got := ed.evaluate("development", "banner", `{"plan":"pro"}`); got["variant"] != "plain" {
		t.Fatalf("a refused rule changed the flag: %v", got)
	}

	// Authorization and CSRF.
	viewer := h.signIn(h.token("vera", "viewer", nil))
	if st, _ := viewer.post(path, url.Values{"targeting": {rule}}); st != http.StatusForbidden {
		t.Errorf("viewer's targeting: %d, want 403", st)
	}
	if st, _ := ed.post("/environments/staging/flags/banner/targeting", url.Values{"targeting": {rule}}); st != http.StatusForbidden {
		t.Errorf("development-scoped editor's targeting in staging: %d, want 403", st)
	}
	if st, _ := ed.post(path, url.Values{"targeting": {rule}, "csrf": {"stale"}}); st != http.StatusForbidden {
		t.Errorf("targeting without the CSRF token: %d, want 403", st)
	}
	if st, _ := ed.post("/environments/development/flags/banner/clear", nil); st != http.StatusNotFound {
		t.Errorf("removing an override there is not: %d, want 404", st)
	}

	if st, body := ed.post(path, url.Values{"targeting": {rule}}); st != http.StatusSeeOther {
		t.Fatalf("a valid rule: %d %s", st, body)
	}
	if got := ed.evaluate("development", "banner", `{"plan":"pro"}`); got["variant"] != "loud" || got["reason"] != "TARGETING_MATCH" {
		t.Errorf("after the rule: %v", got)
	}
	body := ed.must("/environments/development/flags")
	if !strings.Contains(html.UnescapeString(body), ">"+rule+"</textarea>") || !strings.Contains(body, `action="/environments/development/flags/banner/clear"`) {
		t.Error("the flags page does not show the override's rule and its remove button")
	}
	if got := viewer.evaluate("staging", "banner", `{"plan":"pro"}`); got["variant"] != "plain" {
		t.Errorf("the override leaked into staging: %v", got)
	}

	if st, _ := viewer.post("/environments/development/flags/banner/clear", nil); st != http.StatusForbidden {
		t.Errorf("viewer's remove: %d, want 403", st)
	}
	if st, body := ed.post("/environments/development/flags/banner/clear", nil); st != http.StatusSeeOther {
		t.Fatalf("remove override: %d %s", st, body)
	}
	if got := ed.evaluate("development", "banner", `{"plan":"pro"}`); got["variant"] != "plain" || got["reason"] == "TARGETING_MATCH" {
		t.Errorf("after removing the override: %v", got)
	}
	audit := h.signIn(adminToken).must("/audit")
	for _, want := range []string{"flag.override-clear", "flag.override", "development/banner"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q", want)
		}
	}
}
