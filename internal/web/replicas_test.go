package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

// replicas starts two servers with the UI on one PostgreSQL database.
func replicas(t *testing.T) (a, b *harness) {
	t.Helper()
	u := pgtest.URL(t)
	open := func() *harness {
		st, err := postgres.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		return startOn(t, st)
	}
	a = open()
	b = open()
	return a, b
}

// on is the same browser (cookie jar) talking to another replica, as
// behind a load balancer.
func (u *user) on(h *harness) *user { return &user{h: h, c: u.c, csrf: u.csrf} }

// TestSessionOnTwoReplicas: a session started on one replica is accepted,
// with its CSRF token, by the other; signing out on one ends it on both;
// revoking the token ends its sessions everywhere.
func TestSessionOnTwoReplicas(t *testing.T) {
	a, b := replicas(t)
	onA := a.signIn(adminToken)
	onB := onA.on(b)
	if body := onB.must("/"); !strings.Contains(body, `name="csrf" value="`+onA.csrf+`"`) {
		t.Fatal("replica b does not show the session's CSRF token")
	}
	// A state-changing form on b with a's CSRF token: accepted (the
	// sign-out below), and refused without it.
	if st, _ := onB.post("/logout", map[string][]string{"csrf": {"stale"}}); st != http.StatusForbidden {
		t.Fatalf("POST /logout on b with a wrong CSRF token: %d, want 403", st)
	}
	if st, _ := onB.post("/logout", nil); st != http.StatusSeeOther {
		t.Fatalf("sign-out on b: %d", st)
	}
	for name, u := range map[string]*user{"a": onA, "b": onB} {
		if st, _ := u.get("/"); st != http.StatusSeeOther {
			t.Errorf("replica %s after signing out on b: %d, want a redirect to /login", name, st)
		}
	}

	// A token revoked through a ends its session on b at once.
	tok, text, err := a.app.CreateToken(t.Context(), a.sys, appReq("vic", "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	vic := a.signIn(text).on(b)
	vic.must("/")
	if err := a.app.DeleteToken(t.Context(), a.sys, tok.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := vic.get("/"); st != http.StatusSeeOther {
		t.Errorf("revoked token's session on b: %d, want a redirect to /login", st)
	}
}
