package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// shop2 is the shop workspace with another port and another committed
// password: the release a diff compares h.release with.
func (h *harness) shop2() string {
	h.t.Helper()
	files := shop("9090")
	files["config/default.yaml"] = []byte(strings.ReplaceAll(string(files["config/default.yaml"]), literal, literal2))
	return h.upload(files, map[string]string{"git.sha": "def5678"})
}

// literal2 is the second release's sensitive committed value.
const literal2 = "dev-literal-pass-88"

func TestDiffOfTwoReleases(t *testing.T) {
	h := seeded(t)
	rel2 := h.shop2()
	q := url.Values{"ra": {h.release}, "rb": {rel2}, "env": {"development"}}
	path := "/diff?" + q.Encode()

	viewer := h.signIn(h.token("vera", "viewer", nil))
	body := viewer.must(path)
	for _, want := range []string{`data-key="server.port"`, "<code>8080</code>", "<code>9090</code>", `data-key="database.password"`, "2 changes", "&lt;redacted&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("release diff lacks %q", want)
		}
	}
	if strings.Contains(body, literal) || strings.Contains(body, literal2) {
		t.Fatal("the release diff shows a sensitive value to a viewer")
	}
	if strings.Contains(body, `id="diff-reveal"`) {
		t.Error("a viewer is offered the reveal")
	}
	// The releases are offered to pick from, with their labels.
	if !strings.Contains(body, `<option value="`+rel2+`">`) || !strings.Contains(body, "git.sha=def5678") {
		t.Error("the release picker lacks the second release")
	}
	reveal := func() url.Values {
		return url.Values{"ra": {h.release}, "rb": {rel2}, "env": {"development"}, "reveal": {"1"}}
	}
	if st, _ := viewer.post("/diff", reveal()); st != http.StatusForbidden {
		t.Errorf("viewer's reveal: %d, want 403", st)
	}

	// Staging resolves the password from its server-side secret: the
	// same in both releases, so no change there, and never the canary.
	body = viewer.must("/diff?" + url.Values{"ra": {h.release}, "rb": {rel2}, "env": {"staging"}}.Encode())
	if strings.Contains(body, canary) || strings.Contains(body, `data-key="database.password"`) || !strings.Contains(body, `data-key="server.port"`) {
		t.Errorf("staging's release diff: %s", body)
	}

	admin := h.signIn(adminToken)
	if body := admin.must(path); !strings.Contains(body, `id="diff-reveal"`) {
		t.Fatal("an admin is not offered the reveal")
	}
	noCSRF := url.Values{"csrf": {"x"}, "ra": {h.release}, "rb": {rel2}, "env": {"development"}, "reveal": {"1"}}
	if st, _ := admin.post("/diff", noCSRF); st != http.StatusForbidden {
		t.Errorf("reveal without the CSRF token: %d, want 403", st)
	}
	if audit := admin.must("/audit"); strings.Contains(audit, "web diff") {
		t.Fatal("a refused reveal was audited")
	}
	st, body := admin.post("/diff", reveal())
	if st != http.StatusOK || !strings.Contains(body, literal) || !strings.Contains(body, literal2) || !strings.Contains(body, `id="revealed"`) {
		t.Fatalf("admin's reveal: %d", st)
	}
	audit := admin.must("/audit")
	if !strings.Contains(audit, "web diff") || !strings.Contains(audit, "database.password") || strings.Contains(audit, literal) {
		t.Fatal("the reveal is not audited with its key (or the log shows the value)")
	}

	// Scoped tokens: no release diff resolved for an environment out of
	// scope; problems shown at their field.
	dev := h.signIn(h.token("dev", "viewer", []string{"development"}))
	if st, _ := dev.get("/diff?" + url.Values{"ra": {h.release}, "rb": {rel2}, "env": {"staging"}}.Encode()); st != http.StatusForbidden {
		t.Errorf("development-scoped release diff in staging: %d, want 403", st)
	}
	body = admin.must("/diff?" + url.Values{"ra": {"rel_nope"}, "rb": {rel2}, "env": {"development"}}.Encode())
	if !strings.Contains(body, `id="ra-error"`) || !strings.Contains(body, "unknown release") || !strings.Contains(body, `aria-invalid="true"`) {
		t.Errorf("an unknown release is not reported at its field: %s", body)
	}
}

// The environment page links each release it ran to its diff with the one
// before.
func TestEnvironmentLinksReleaseDiffs(t *testing.T) {
	h := seeded(t)
	rel2 := h.shop2()
	if _, err := h.app.SetRelease(t.Context(), h.sys, "development", rel2); err != nil {
		t.Fatal(err)
	}
	body := h.signIn(adminToken).must("/environments/development")
	want := `href="/diff?ra=` + h.release + `&amp;rb=` + rel2 + `&amp;env=development"`
	if !strings.Contains(body, want) {
		t.Fatalf("the releases list lacks the diff link %s", want)
	}
}

func TestRevealEnvironmentDiff(t *testing.T) {
	h := seeded(t)
	form := func() url.Values {
		return url.Values{"a": {"development"}, "b": {"staging"}, "reveal": {"1"}}
	}
	viewer := h.signIn(h.token("vera", "viewer", nil))
	if body := viewer.must("/diff?a=development&b=staging"); strings.Contains(body, `id="diff-reveal"`) || strings.Contains(body, canary) {
		t.Fatal("a viewer is offered the reveal, or sees the secret")
	}
	if st, _ := viewer.post("/diff", form()); st != http.StatusForbidden {
		t.Errorf("viewer's reveal: %d, want 403", st)
	}
	admin := h.signIn(adminToken)
	if body := admin.must("/diff?a=development&b=staging"); !strings.Contains(body, `id="diff-reveal"`) || strings.Contains(body, canary) {
		t.Fatal("an admin is not offered the reveal, or sees the secret unrevealed")
	}
	st, body := admin.post("/diff", form())
	if st != http.StatusOK || !strings.Contains(body, canary) || !strings.Contains(body, literal) {
		t.Fatalf("admin's reveal: %d", st)
	}
	audit := admin.must("/audit")
	if strings.Count(audit, "web diff") < 2 || strings.Contains(audit, canary) {
		t.Error("the reveal is not audited once per environment (or the log shows the value)")
	}
}
