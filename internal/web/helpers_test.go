package web_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/vault"
	"github.com/envplane/envplane/internal/web"
)

const (
	adminToken = "ep_testadmintoken0000000000000000000000"
	// canary is a server-side secret's value: no page may show it to a
	// user who did not reveal it.
	canary = "canary-s3cr3t-9f2e"
	// literal is a sensitive value written in a committed file.
	literal = "dev-literal-pass-77"
)

// shop is a workspace whose production takes releases through two
// approvals from groups and a checklist.
func shop(port string) map[string][]byte {
	return map[string][]byte{
		"envplane.yaml": []byte(`name: shop
environments:
  - name: development
    data: synthetic
    protection: open
  - name: staging
    data: anonymized
    protection: guarded
  - name: production
    data: live
    protection: restricted
    promotion:
      from: staging
      checklist: ["On-call team notified"]
      approvals: { required: 2, groups: [devops, seniors] }
config:
  layers:
    - config/default.yaml
    - config/{env}.yaml
`),
		"config/default.yaml":     []byte("server:\n  host: 0.0.0.0\n  port: " + port + "\ndatabase:\n  host: localhost\n  password: " + literal + "\nlogging:\n  level: debug\n"),
		"config/development.yaml": []byte("logging:\n  level: info\n"),
		"config/staging.yaml":     []byte("database:\n  host: db.staging\n  password: ${DB_PASSWORD}\nlogging:\n  level: warn\n"),
		"config/production.yaml":  []byte("database:\n  host: db.prod\nlogging:\n  level: error\n"),
	}
}

// harness is a server with the UI mounted, on 127.0.0.1.
type harness struct {
	t   testing.TB
	app *app.App
	srv *server.Server
	hs  *httptest.Server
	sys *auth.Principal
	// release is the shop release current in development and staging.
	release string
}

func testVault(t testing.TB) *vault.Vault {
	mk, err := vault.NewMasterKey(bytes.Repeat([]byte{0x42}, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Options{Master: mk})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func start(t testing.TB) *harness {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envplane.db"))
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, st)
}

// startOn is start on the store st, which it closes at the end.
func startOn(t testing.TB, st store.Store) *harness {
	t.Helper()
	ctx := context.Background()
	srv, err := server.New(ctx, server.Options{Store: st, BootstrapToken: adminToken, Vault: testVault(t), PromotionInterval: 50 * time.Millisecond})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	ui, err := web.New(web.Options{App: srv.App(), Source: srv, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetUI(ui)
	h := &harness{t: t, app: srv.App(), srv: srv, hs: httptest.NewServer(srv.Handler()), sys: auth.System("test")}
	t.Cleanup(func() {
		srv.Close()
		h.hs.Close()
		st.Close()
	})
	return h
}

// seeded is start with the shop workspace current in development and
// staging and the canary secret in staging.
func seeded(t testing.TB) *harness {
	h := start(t)
	ctx := context.Background()
	if _, err := h.app.PutSecret(ctx, h.sys, "staging", "DB_PASSWORD", canary, nil); err == nil {
		t.Fatal("a secret of an unknown environment was stored")
	}
	h.release = h.upload(shop("8080"), map[string]string{"git.sha": "abc1234"})
	if _, err := h.app.PutSecret(ctx, h.sys, "staging", "DB_PASSWORD", canary, nil); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"development", "staging"} {
		if _, err := h.app.SetRelease(ctx, h.sys, env, h.release); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func (h *harness) upload(files map[string][]byte, labels map[string]string) string {
	h.t.Helper()
	rel, _, err := h.app.CreateRelease(context.Background(), h.sys, files, labels)
	if err != nil {
		h.t.Fatal(err)
	}
	return rel.ID
}

// token creates a token and returns its text.
func (h *harness) token(name, role string, envs []string, groups ...string) string {
	h.t.Helper()
	_, text, err := h.app.CreateToken(context.Background(), h.sys, app.TokenRequest{Name: name, Role: role, Environments: envs, Groups: groups})
	if err != nil {
		h.t.Fatal(err)
	}
	return text
}

// user is a browser-like client: a cookie jar, no redirects followed.
type user struct {
	h    *harness
	c    *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (h *harness) anon() *user {
	jar, _ := cookiejar.New(nil)
	return &user{h: h, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs in with token and returns the user.
func (h *harness) signIn(token string) *user {
	h.t.Helper()
	u := h.anon()
	if st, body := u.login(token); st != http.StatusSeeOther {
		h.t.Fatalf("sign-in: %d %s", st, body)
	}
	_, body := u.get("/")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		h.t.Fatalf("no CSRF token on the overview: %s", body)
	}
	u.csrf = m[1]
	return u
}

func (u *user) login(token string) (int, string) {
	_, form := u.get("/login")
	m := csrfField.FindStringSubmatch(form)
	if m == nil {
		u.h.t.Fatalf("no CSRF token on the sign-in form: %s", form)
	}
	return u.post("/login", url.Values{"token": {token}, "csrf": {m[1]}})
}

func (u *user) do(req *http.Request) (*http.Response, string) {
	u.h.t.Helper()
	resp, err := u.c.Do(req)
	if err != nil {
		u.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (u *user) get(path string) (int, string) {
	u.h.t.Helper()
	req, _ := http.NewRequest("GET", u.h.hs.URL+path, nil)
	resp, body := u.do(req)
	return resp.StatusCode, body
}

// post sends a form; with csrf set on the user, its token is added
// unless the form has one.
func (u *user) post(path string, form url.Values) (int, string) {
	u.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if u.csrf != "" && !form.Has("csrf") {
		form.Set("csrf", u.csrf)
	}
	req, _ := http.NewRequest("POST", u.h.hs.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := u.do(req)
	return resp.StatusCode, body
}

func (u *user) must(path string) string {
	u.h.t.Helper()
	st, body := u.get(path)
	if st != http.StatusOK {
		u.h.t.Fatalf("GET %s: %d %s", path, st, body)
	}
	return body
}

// arka reads the ARKA example workspace.
func arka(t testing.TB) map[string][]byte {
	t.Helper()
	root := filepath.Join("..", "..", "examples", "arka")
	files := map[string][]byte{}
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(root, p))
		files[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func appReq(name, role string, groups ...string) app.TokenRequest {
	return app.TokenRequest{Name: name, Role: role, Groups: groups}
}

// openProduction opens the promotion of the shop release into production
// as the bootstrap admin and returns its ID.
func (h *harness) openProduction() string {
	h.t.Helper()
	pr, err := h.app.Promote(context.Background(), h.sys, app.PromoteRequest{Release: h.release, Environment: "production"})
	if err != nil {
		h.t.Fatal(err)
	}
	return pr.ID
}
