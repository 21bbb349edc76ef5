// Package web is envplane's web UI: server-rendered pages (html/template,
// assets embedded, no build step) over the same use cases as the API. It is
// a transport like internal/server: it reads resolved configs from the
// server's snapshot, calls internal/app with the signed-in principal for
// everything else, and never writes to the store itself.
//
// Sessions live in the store, so that several replicas on one database
// accept each other's cookies: the cookie holds a random session ID only,
// the store its hash, and a revoked token ends its sessions.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/tree"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Source is what the UI reads from a server replica's snapshot
// (*server.Server implements it).
type Source interface {
	// Environments lists every environment in promotion order.
	Environments() []domain.Environment
	// Resolved is the resolved tree of (env, service) and the options
	// that redact it.
	Resolved(env, service string) (*tree.Value, render.Options, error)
	// Watch streams env's change events as SSE messages.
	Watch(env string) (msgs <-chan []byte, gone <-chan struct{}, cancel func())
	// FlagList is env's flags in effect, as the API's JSON listing.
	FlagList(env string) ([]byte, error)
	// EvaluateFlag is the OFREP answer (JSON) for flag key in env and
	// the context contextJSON, as the server's OFREP endpoint computes it.
	EvaluateFlag(env, key string, contextJSON []byte) []byte
	// OverrideFlag overrides flag key's state and/or default variant in
	// env for p: checked against the flag, stored through the App.
	OverrideFlag(ctx context.Context, p *auth.Principal, env, key string, state, defaultVariant *string) error
}

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// Options configure the UI. App and Source are required.
type Options struct {
	App    *app.App
	Source Source
	Logger *slog.Logger     // nil: discarded
	Clock  func() time.Time // nil: time.Now
	// SessionTTL is how long a session lasts after sign-in (0: 12 h).
	SessionTTL time.Duration
	// Heartbeat is the interval of the live-update stream's keep-alive
	// comments (0: 15 s).
	Heartbeat time.Duration
}

// UI is the web UI's handler.
type UI struct {
	app   *app.App
	src   Source
	log   *slog.Logger
	now   func() time.Time
	ttl   time.Duration
	beat  time.Duration
	mux   *http.ServeMux
	pages map[string]*template.Template
	// failed bounds sign-in attempts with unknown tokens.
	failed  *rate.Limiter
	release releaseCache
}

// New returns the UI.
func New(o Options) (*UI, error) {
	if o.App == nil || o.Source == nil {
		return nil, errors.New("web: an App and a Source are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	u := &UI{app: o.App, src: o.Source, log: o.Logger, now: o.Clock, ttl: o.SessionTTL, beat: o.Heartbeat,
		mux: http.NewServeMux(), failed: rate.NewLimiter(5, 20)}
	u.release.init()
	var err error
	if u.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	u.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	u.mux.HandleFunc("GET /login", u.loginForm)
	u.mux.HandleFunc("POST /login", u.login)
	u.mux.HandleFunc("POST /logout", u.signedIn(u.logout))
	u.mux.HandleFunc("GET /{$}", u.signedIn(u.overview))
	u.mux.HandleFunc("GET /matrix", u.signedIn(u.matrix))
	u.mux.HandleFunc("GET /explain", u.signedIn(u.explain))
	u.mux.HandleFunc("POST /explain", u.signedIn(u.explain))
	u.mux.HandleFunc("GET /diff", u.signedIn(u.diff))
	u.mux.HandleFunc("POST /diff", u.signedIn(u.diff))
	u.mux.HandleFunc("GET /promotions", u.signedIn(u.promotions))
	u.mux.HandleFunc("POST /promotions/{id}/{action}", u.signedIn(u.promotionAction))
	u.mux.HandleFunc("POST /promotions/{id}/checklist/{index}", u.signedIn(u.tick))
	u.mux.HandleFunc("GET /audit", u.signedIn(u.audit))
	u.mux.HandleFunc("GET /events", u.signedIn(u.events))
	u.mux.HandleFunc("GET /environments/{env}", u.signedIn(u.environment))
	u.mux.HandleFunc("POST /environments/{env}/promote", u.signedIn(u.envPromote))
	u.mux.HandleFunc("POST /environments/{env}/rollback", u.signedIn(u.envPromote))
	u.mux.HandleFunc("GET /environments/{env}/rollback/emergency", u.signedIn(u.emergencyForm))
	u.mux.HandleFunc("GET /environments/{env}/flags", u.signedIn(u.flagsPage))
	u.mux.HandleFunc("POST /environments/{env}/evaluate", u.signedIn(u.flagEvaluate))
	u.mux.HandleFunc("POST /environments/{env}/flags/{key}", u.signedIn(u.flagOverride))
	u.mux.HandleFunc("POST /environments/{env}/flags/changes/{id}/{action}", u.signedIn(u.flagChangeAction))
	u.mux.HandleFunc("POST /environments/{env}/flags/{key}/targeting", u.signedIn(u.flagTargeting))
	u.mux.HandleFunc("POST /environments/{env}/flags/{key}/clear", u.signedIn(u.flagClear))
	u.mux.HandleFunc("GET /environments/{env}/secrets", u.signedIn(u.secretsPage))
	u.mux.HandleFunc("POST /environments/{env}/secrets/{name}/reveal", u.signedIn(u.revealSecret))
	return u, nil
}

// The UI's own Content-Security-Policy: scripts, styles and connections
// from the server itself only, no inline script or style, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP sets the UI's security headers and routes the request.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}
	u.mux.ServeHTTP(w, r)
}

// req is one signed-in request.
type req struct {
	w    http.ResponseWriter
	r    *http.Request
	p    *auth.Principal
	sess *domain.Session
}

func (q *req) ctx() context.Context { return q.r.Context() }

// signedIn resolves the session and its principal, sends others to the
// sign-in page, and refuses a state-changing request without the
// session's CSRF token.
func (u *UI) signedIn(h func(*req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sid := sessionID(r)
		if sid == "" {
			if r.Method == http.MethodGet && r.URL.Path != "/events" {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.fail(w, r, nil, errs.E(errs.Unauthorized, "sign in first"))
			return
		}
		sess, p, err := u.app.Session(r.Context(), sessionKey(sid))
		if errs.Is(err, errs.Unauthorized) {
			clearCookie(w, r)
			if r.Method == http.MethodGet && r.URL.Path != "/events" {
				http.Redirect(w, r, "/login?expired=1&next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.fail(w, r, nil, err)
			return
		}
		if err != nil {
			u.fail(w, r, nil, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameToken(r.PostFormValue("csrf"), sess.CSRF) {
				u.fail(w, r, nil, errs.E(errs.Forbidden, "the form's CSRF token is missing or stale: reload the page and try again"))
				return
			}
		}
		q := &req{w: w, r: r, p: &p, sess: &sess}
		if err := h(q); err != nil {
			u.fail(w, r, q, err)
		}
	}
}

// fail answers err as an error page with its kind's status.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, q *req, err error) {
	kind, msg, fields := errs.Public(err)
	status := kind.Status()
	if status >= 500 {
		u.log.Error("web: request failed", "path", r.URL.Path, "err", err)
	}
	if r.URL.Path == "/events" {
		http.Error(w, msg, status)
		return
	}
	d := struct {
		base
		Status  int
		Message string
		Fields  []errs.FieldError
	}{base: u.base(q, "Error"), Status: status, Message: msg, Fields: fields}
	u.render(w, status, "error", d)
}

// base is what every page's layout shows.
type base struct {
	Title string
	User  string
	Role  auth.Role
	CSRF  string
	Nav   string
	// NavEnvs are the environments the top navigation links to; NavEnv
	// the one its Flags and Secrets links open (the page's own, else the
	// first), NavSecrets whether the user may list NavEnv's secrets.
	NavEnvs    []string
	NavEnv     string
	NavSecrets bool
	// Live lists the environments whose changes reload the page.
	Live []string
}

func (u *UI) base(q *req, title string) base {
	b := base{Title: title}
	if q != nil {
		b.User, b.Role, b.CSRF = q.p.Name, q.p.Role, q.sess.CSRF
		if b.User == "" {
			b.User = "token " + q.p.TokenID
		}
		b.NavEnvs = names(u.visible(q.p))
		if len(b.NavEnvs) > 0 {
			b.inEnv(q.p, b.NavEnvs[0])
		}
	}
	return b
}

// inEnv points the navigation's Flags and Secrets links at env.
func (b *base) inEnv(p *auth.Principal, env string) {
	b.NavEnv, b.NavSecrets = env, p.Can(auth.ReadSecrets, env) == nil
}
