package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

const (
	sessionCookie = "envplane_session"
	// loginCookie carries the sign-in form's CSRF token (double submit):
	// there is no session yet to hold it.
	loginCookie = "envplane_login"
)

// Sessions live in the store (through the App), so that every replica
// accepts a cookie another one set: the cookie holds a random ID, the store
// its SHA-256 only, so a copy of the table gives no usable cookie.

// sessionKey is the hex SHA-256 of a session cookie's ID.
func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// randomID is 32 random bytes, base64url.
func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sessionID is the request's session cookie ("" when none).
func sessionID(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, r *http.Request) { setCookie(w, r, sessionCookie, "", -1) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	// Browsers drop tabs and newlines from a URL and read a backslash as "/", so
	// "/\t/evil.example" would be "//evil.example", another site.
	if strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

type loginData struct {
	base
	Next    string
	Error   string
	Expired bool
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next")), Expired: r.URL.Query().Has("expired")})
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	d.base = base{Title: "Sign in", CSRF: randomID()}
	setCookie(w, r, loginCookie, d.CSRF, 3600)
	u.render(w, status, "login", d)
}

// login exchanges a token for a session. SDK keys are for applications
// and do not sign in.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := safeNext(r.PostFormValue("next"))
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameToken(r.PostFormValue("csrf"), c.Value) {
		u.fail(w, r, nil, errs.E(errs.Forbidden, "the sign-in form's CSRF token is missing or stale: reload the page and try again"))
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		u.showLogin(w, r, http.StatusBadRequest, loginData{Next: next, Error: "Paste your envplane token."})
		return
	}
	p, err := u.app.Authenticate(r.Context(), auth.HashToken(token))
	if errs.Is(err, errs.Unauthorized) {
		if !u.failed.Allow() {
			u.fail(w, r, nil, errs.E(errs.RateLimited, "too many failed sign-ins; wait a moment"))
			return
		}
		u.showLogin(w, r, http.StatusUnauthorized, loginData{Next: next, Error: "Unknown or revoked token."})
		return
	}
	if err != nil {
		u.fail(w, r, nil, err)
		return
	}
	if p.Role == auth.SDK {
		u.showLogin(w, r, http.StatusForbidden, loginData{Next: next, Error: "SDK keys are for applications; sign in with a personal token."})
		return
	}
	id, now := randomID(), u.now()
	sess := domain.Session{IDHash: sessionKey(id), CSRF: randomID(), CreatedAt: now, ExpiresAt: now.Add(u.ttl)}
	if err := u.app.StartSession(r.Context(), &p, sess); err != nil {
		u.fail(w, r, nil, err)
		return
	}
	setCookie(w, r, sessionCookie, id, int(u.ttl/time.Second))
	setCookie(w, r, loginCookie, "", -1)
	u.log.Info("web: signed in", "token", p.TokenID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(q *req) error {
	if err := u.app.EndSession(q.ctx(), q.sess.IDHash); err != nil {
		return err
	}
	u.log.Info("web: signed out", "token", q.p.TokenID)
	clearCookie(q.w, q.r)
	http.Redirect(q.w, q.r, "/login", http.StatusSeeOther)
	return nil
}
