package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSignInAndOut(t *testing.T) {
	h := seeded(t)
	u := h.anon()
	if st, _ := u.get("/matrix"); st != http.StatusSeeOther {
		t.Fatalf("unsigned GET /matrix: %d, want a redirect to /login", st)
	}
	if st, body := u.login("ep_nope"); st != http.StatusUnauthorized || !strings.Contains(body, "Unknown or revoked") {
		t.Fatalf("bad token: %d %s", st, body)
	}
	sdk := h.token("app", "sdk", []string{"development"})
	if st, _ := u.login(sdk); st != http.StatusForbidden {
		t.Fatalf("SDK key signed in: %d", st)
	}
	req, _ := http.NewRequest("GET", h.hs.URL+"/login", nil)
	resp, form := u.do(req)
	m := csrfField.FindStringSubmatch(form)
	req, _ = http.NewRequest("POST", h.hs.URL+"/login", strings.NewReader(url.Values{"token": {adminToken}, "csrf": {m[1]}, "next": {"//evil.example/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ = u.do(req)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == "envplane_session" {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", c)
	}
	if strings.Contains(c.Value, adminToken) {
		t.Fatal("the cookie holds the token")
	}
	body := u.must("/")
	for _, want := range []string{"development", "staging", "production", "synthetic", "restricted", "git.sha=abc1234"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	u.csrf = csrfField.FindStringSubmatch(body)[1]
	if st, _ := u.post("/logout", nil); st != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", st)
	}
	if st, _ := u.get("/"); st != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", st)
	}
}

func TestPagesHaveCSPAndAPIKeepsItsOwn(t *testing.T) {
	h := seeded(t)
	u := h.signIn(adminToken)
	req, _ := http.NewRequest("GET", h.hs.URL+"/matrix", nil)
	resp, _ := u.do(req)
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("page CSP %q", csp)
	}
	for _, path := range []string{"/static/app.js", "/static/app.css"} {
		if st, _ := u.get(path); st != http.StatusOK {
			t.Fatalf("%s: %d", path, st)
		}
	}
	req, _ = http.NewRequest("GET", h.hs.URL+"/api/v1/environments", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, _ = u.do(req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
		t.Fatalf("API: %d CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	req, _ = http.NewRequest("GET", h.hs.URL+"/api/v1/nope", nil)
	resp, body := u.do(req)
	if resp.StatusCode != 404 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown API route went to the UI: %d %s", resp.StatusCode, body)
	}
}

func TestCSRF(t *testing.T) {
	h := seeded(t)
	u := h.signIn(adminToken)
	for _, path := range []string{"/logout", "/promotions/p1/approve", "/promotions/p1/checklist/0", "/explain", "/diff",
		"/environments/production/rollback", "/environments/development/flags/banner/targeting", "/environments/development/flags/banner/clear"} {
		if st, _ := u.post(path, url.Values{"csrf": {"forged"}, "env": {"staging"}, "key": {"database.password"}, "reveal": {"1"}}); st != http.StatusForbidden {
			t.Errorf("POST %s with a forged CSRF token: %d, want 403", path, st)
		}
		if st, _ := u.post(path, url.Values{"csrf": {""}}); st != http.StatusForbidden {
			t.Errorf("POST %s without a CSRF token: %d, want 403", path, st)
		}
	}
	a := h.anon()
	if st, _ := a.post("/login", url.Values{"token": {adminToken}}); st != http.StatusForbidden {
		t.Errorf("sign-in without the form's CSRF token: %d", st)
	}
	if st, _ := u.get("/"); st != http.StatusOK {
		t.Fatalf("session ended by a refused POST: %d", st)
	}
}

func TestAuthorizationPerPage(t *testing.T) {
	h := seeded(t)
	viewer := h.signIn(h.token("vera", "viewer", nil))
	dev := h.signIn(h.token("devi", "editor", []string{"development"}))
	for path, want := range map[string]int{
		"/": 200, "/matrix": 200, "/diff?a=development&b=staging": 200, "/promotions": 200,
		"/explain?env=staging&key=server.port": 200, "/audit": 403,
	} {
		if st, body := viewer.get(path); st != want {
			t.Errorf("viewer GET %s: %d, want %d: %s", path, st, want, body)
		}
	}
	if st, _ := viewer.post("/explain", url.Values{"env": {"staging"}, "key": {"database.password"}, "reveal": {"1"}}); st != 403 {
		t.Errorf("viewer reveal: %d", st)
	}
	for path, want := range map[string]int{
		"/explain?env=staging&key=server.port": 403, "/diff?a=development&b=staging": 403,
		"/events?env=staging": 403,
	} {
		if st, _ := dev.get(path); st != want {
			t.Errorf("development-scoped GET %s: %d, want %d", path, st, want)
		}
	}
	for _, path := range []string{"/", "/matrix"} {
		if body := dev.must(path); strings.Contains(body, "staging") || strings.Contains(body, "db.prod") {
			t.Errorf("development-scoped %s shows other environments", path)
		}
	}
	// A revoked token ends its sessions.
	tok, text, _ := h.app.CreateToken(t.Context(), h.sys, appReq("gone", "viewer"))
	gone := h.signIn(text)
	if err := h.app.DeleteToken(t.Context(), h.sys, tok.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := gone.get("/"); st != http.StatusSeeOther {
		t.Errorf("revoked token's session: %d", st)
	}
}

func TestNoSecretForAViewer(t *testing.T) {
	h := seeded(t)
	prod := h.openProduction()
	viewer := h.signIn(h.token("vera", "viewer", nil))
	pages := []string{"/", "/matrix", "/matrix?diff=1", "/matrix?key=password", "/diff?a=development&b=staging",
		"/diff?a=staging&b=development", "/explain?env=staging&key=database.password",
		"/explain?env=development&key=database.password", "/explain?env=staging&key=database", "/promotions"}
	for _, path := range pages {
		body := viewer.must(path)
		if strings.Contains(body, canary) || strings.Contains(body, literal) {
			t.Errorf("viewer's %s shows a sensitive value", path)
		}
	}
	_ = prod
	// An admin reveals, audited.
	admin := h.signIn(adminToken)
	if strings.Contains(admin.must("/matrix"), canary) {
		t.Fatal("the matrix shows the secret without a reveal")
	}
	st, body := admin.post("/explain", url.Values{"env": {"staging"}, "key": {"database.password"}, "reveal": {"1"}})
	if st != 200 || !strings.Contains(body, canary) {
		t.Fatalf("admin reveal: %d", st)
	}
	if audit := admin.must("/audit"); !strings.Contains(audit, "web explain") || strings.Contains(audit, canary) {
		t.Fatalf("the reveal is not audited (or the log shows the value)")
	}
}

func TestMatrixFiltersWithoutJS(t *testing.T) {
	h := seeded(t)
	u := h.signIn(adminToken)
	all := u.must("/matrix")
	if !strings.Contains(all, `data-key="server.host"`) || !strings.Contains(all, "file config/default.yaml:2") {
		t.Fatalf("matrix lacks server.host or its source title")
	}
	diff := u.must("/matrix?diff=1")
	if strings.Contains(diff, `data-key="server.host"`) || !strings.Contains(diff, `data-key="logging.level"`) {
		t.Fatalf("?diff=1 keeps equal rows or drops differing ones")
	}
	key := u.must("/matrix?key=LOGGING")
	if strings.Contains(key, `data-key="server.port"`) || !strings.Contains(key, `data-key="logging.level"`) {
		t.Fatalf("?key= does not filter")
	}
	x := u.must("/explain?env=staging&key=logging.level")
	if !strings.Contains(x, "config/staging.yaml") || !strings.Contains(x, "config/default.yaml") {
		t.Fatalf("explain lacks the chain: %s", x)
	}
}
