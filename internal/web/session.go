package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

const (
	sessionCookie = "envplane_session"
	// loginCookie carries the sign-in form's CSRF token (double submit):
	// there is no session yet to hold it.
	loginCookie = "envplane_login"
	// maxSessions bounds the sessions held; the oldest go first.
	maxSessions = 10000
)

// session is one sign-in. The map key is the SHA-256 of the cookie's ID,
// so a memory dump does not give usable cookies either.
type session struct {
	tokenHash string
	csrf      string
	expires   time.Time
}

type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func (s *sessions) init() { s.m = map[[32]byte]*session{} }

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessionKey(id)
	sess := s.m[k]
	if sess != nil && !now.Before(sess.expires) {
		delete(s.m, k)
		return nil
	}
	return sess
}

func (s *sessions) put(id string, sess *session, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
		for k := range s.m { // still full: drop any one
			if len(s.m) < maxSessions {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[sessionKey(id)] = sess
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	delete(s.m, sessionKey(id))
	s.mu.Unlock()
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

func (u *UI) sessionOf(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", nil
	}
	return c.Value, u.sessions.get(c.Value, u.now())
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, r *http.Request) { setCookie(w, r, sessionCookie, "", -1) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
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
	hash := auth.HashToken(token)
	p, err := u.app.Authenticate(r.Context(), hash)
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
	id := randomID()
	now := u.now()
	u.sessions.put(id, &session{tokenHash: hash, csrf: randomID(), expires: now.Add(u.ttl)}, now)
	setCookie(w, r, sessionCookie, id, int(u.ttl/time.Second))
	setCookie(w, r, loginCookie, "", -1)
	u.log.Info("web: signed in", "token", p.TokenID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(q *req) error {
	u.sessions.drop(q.sid)
	clearCookie(q.w, q.r)
	http.Redirect(q.w, q.r, "/login", http.StatusSeeOther)
	return nil
}
