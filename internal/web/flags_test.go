package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// webFlags are the flags of the shop with flags: a boolean with
// targeting, a string without.
const webFlags = `flags:
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
`

// flagged is seeded with the shop release that has flags current in
// development and staging.
func flagged(t *testing.T) *harness {
	h := seeded(t)
	files := shop("8080")
	files["envplane.yaml"] = append(files["envplane.yaml"], "flags: [flags.yaml]\n"...)
	files["flags.yaml"] = []byte(webFlags)
	h.release = h.upload(files, map[string]string{"git.sha": "def5678"})
	for _, env := range []string{"development", "staging"} {
		if _, err := h.app.SetRelease(context.Background(), h.sys, env, h.release); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

var evalField = regexp.MustCompile(`(?s)id="eval-(value|variant|reason|error)">(.*?)</dd>`)

// evaluate posts the evaluation form and returns its answer's fields.
func (u *user) evaluate(env, key, context string) map[string]string {
	u.h.t.Helper()
	st, body := u.post("/environments/"+env+"/evaluate", url.Values{"key": {key}, "context": {context}})
	if st != http.StatusOK {
		u.h.t.Fatalf("evaluate %s in %s: %d %s", key, env, st, body)
	}
	out := map[string]string{}
	for _, m := range evalField.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[2], ""))
	}
	return out
}

func TestFlagsPageListsAndEvaluates(t *testing.T) {
	h := flagged(t)
	u := h.signIn(adminToken)
	body := u.must("/environments/development/flags")
	for _, want := range []string{`id="flag-new-checkout"`, `id="flag-banner"`, "ENABLED", "(default)", "ends_with", "WELCOME!", `name="state" value="DISABLED"`, `name="defaultVariant"`} {
		if !strings.Contains(body, want) && !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("flags page lacks %q", want)
		}
	}
	if got := u.evaluate("development", "new-checkout", `{"targetingKey":"u1","email":"a@example.com"}`); got["value"] != "true" || got["variant"] != "on" || got["reason"] != "TARGETING_MATCH" {
		t.Errorf("targeted evaluation: %v", got)
	}
	if got := u.evaluate("development", "new-checkout", `{"email":"a@elsewhere.org"}`); got["value"] != "false" || got["reason"] != "DEFAULT" {
		t.Errorf("untargeted evaluation: %v", got)
	}
	if got := u.evaluate("development", "banner", `["not an object"]`); !strings.HasPrefix(got["error"], "INVALID_CONTEXT") {
		t.Errorf("an array context: %v", got)
	}
	if got := u.evaluate("development", "nope", `{}`); !strings.HasPrefix(got["error"], "FLAG_NOT_FOUND") {
		t.Errorf("an unknown flag: %v", got)
	}
}

func TestFlagToggleChangesEvaluation(t *testing.T) {
	h := flagged(t)
	editor := h.signIn(h.token("ed", "editor", []string{"development"}))
	if got := editor.evaluate("development", "banner", `{}`); got["value"] != `"Welcome"` {
		t.Fatalf("before: %v", got)
	}
	st, _ := editor.post("/environments/development/flags/banner", url.Values{"defaultVariant": {"loud"}})
	if st != http.StatusSeeOther {
		t.Fatalf("default variant: %d", st)
	}
	if got := editor.evaluate("development", "banner", `{}`); got["value"] != `"WELCOME!"` || got["variant"] != "loud" {
		t.Errorf("after the default variant: %v", got)
	}
	if st, _ := editor.post("/environments/development/flags/banner", url.Values{"state": {"DISABLED"}}); st != http.StatusSeeOther {
		t.Fatalf("disable: %d", st)
	}
	got := editor.evaluate("development", "banner", `{}`)
	if got["reason"] != "DISABLED" || !strings.Contains(got["value"], "code default") {
		t.Errorf("after disabling: %v", got)
	}
	page := html.UnescapeString(editor.must("/environments/development/flags"))
	if !strings.Contains(page, "state DISABLED, default variant loud") || !strings.Contains(page, `name="state" value="ENABLED"`) {
		t.Errorf("the page does not show the override:\n%s", page)
	}
	// The override went through the App: audited under the editor's name.
	entries, _, err := h.app.ListAudit(context.Background(), h.sys, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Target == "development/banner" && strings.Contains(e.Actor, "ed") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d audit entries for the two overrides, want 2", n)
	}
	// A refusal is shown with its reason.
	st, body := editor.post("/environments/development/flags/banner", url.Values{"defaultVariant": {"shouty"}})
	if st != http.StatusUnprocessableEntity || !strings.Contains(body, "does not apply") || !strings.Contains(body, "shouty") {
		t.Errorf("unknown variant: %d %s", st, body)
	}
}

func TestFlagOverrideAuthorization(t *testing.T) {
	h := flagged(t)
	viewer := h.signIn(h.token("vi", "viewer", nil))
	if body := viewer.must("/environments/development/flags"); strings.Contains(body, `name="state"`) || strings.Contains(body, `name="defaultVariant"`) {
		t.Error("a viewer is offered the override forms")
	}
	if st, _ := viewer.post("/environments/development/flags/banner", url.Values{"state": {"DISABLED"}}); st != http.StatusForbidden {
		t.Errorf("viewer toggled: %d", st)
	}
	other := h.signIn(h.token("st-ed", "editor", []string{"staging"}))
	if st, _ := other.post("/environments/development/flags/banner", url.Values{"state": {"DISABLED"}}); st != http.StatusForbidden {
		t.Errorf("staging's editor toggled in development: %d", st)
	}
	if st, _ := other.get("/environments/development/flags"); st != http.StatusForbidden {
		t.Errorf("staging's editor read development's flags: %d", st)
	}
	editor := h.signIn(h.token("ed", "editor", []string{"development"}))
	if st, body := editor.post("/environments/development/flags/banner", url.Values{"state": {"DISABLED"}, "csrf": {"stale"}}); st != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Errorf("stale CSRF: %d", st)
	}
	if got := editor.evaluate("development", "banner", `{}`); got["reason"] != "STATIC" {
		t.Errorf("a refused toggle changed the flag: %v", got)
	}
}

func TestOverviewLinksFlagsAndSecretsAndNamesOverriddenFlags(t *testing.T) {
	h := flagged(t)
	admin := h.signIn(adminToken)
	body := admin.must("/")
	for _, want := range []string{`href="/environments/development/flags">2 flags</a>`, `href="/environments/staging/secrets"`} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(body, "changed from their defaults") {
		t.Error("overview names changed flags before any override")
	}
	if st, _ := admin.post("/environments/staging/flags/banner", url.Values{"state": {"DISABLED"}}); st != http.StatusSeeOther {
		t.Fatalf("disable: %d", st)
	}
	body = admin.must("/")
	if !strings.Contains(body, `changed from their defaults: <a class="tag warn" href="/environments/staging/flags#flag-banner">banner</a>`) {
		t.Errorf("overview does not name the overridden flag:\n%s", body)
	}
	// Development's viewer sees neither staging's flags nor its secrets.
	dev := h.signIn(h.token("dev", "viewer", []string{"development"}))
	if body := dev.must("/"); strings.Contains(body, "/environments/staging/") {
		t.Error("development's viewer is linked to staging's flags or secrets")
	}
}
