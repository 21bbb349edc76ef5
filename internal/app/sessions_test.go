package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// TestSessions: a session is found until it expires, ends at EndSession
// and with its token; SDK keys get none; a token keeps at most
// MaxSessionsPerToken, the oldest going first.
func TestSessions(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	a := newApp(t, &now)
	ctx := context.Background()
	sys := auth.System("test")
	if _, _, err := a.Bootstrap(ctx, ""); err != nil {
		t.Fatal(err)
	}
	tok, text, err := a.CreateToken(ctx, sys, app.TokenRequest{Name: "ann", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctx, auth.HashToken(text))
	if err != nil {
		t.Fatal(err)
	}
	start := func(id string) {
		t.Helper()
		s := domain.Session{IDHash: id, CSRF: "c-" + id, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.StartSession(ctx, &p, s); err != nil {
			t.Fatal(err)
		}
	}
	start("s1")
	s, got, err := a.Session(ctx, "s1")
	if err != nil || got.TokenID != tok.ID || got.Name != "ann" || s.CSRF != "c-s1" || s.TokenID != tok.ID {
		t.Fatalf("Session(s1) = %+v, %+v, %v", s, got, err)
	}
	now = now.Add(time.Hour)
	if _, _, err := a.Session(ctx, "s1"); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("an expired session: %v, want Unauthorized", err)
	}

	start("s2")
	if err := a.EndSession(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Session(ctx, "s2"); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("a session signed out of: %v, want Unauthorized", err)
	}
	if err := a.EndSession(ctx, "s2"); err != nil {
		t.Errorf("signing out twice: %v", err)
	}

	sdk := &auth.Principal{TokenID: tok.ID, Role: auth.SDK, Environments: []string{"dev"}}
	if err := a.StartSession(ctx, sdk, domain.Session{IDHash: "k", CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); !errs.Is(err, errs.Forbidden) {
		t.Errorf("an SDK key's session: %v, want Forbidden", err)
	}

	for i := range app.MaxSessionsPerToken + 1 {
		now = now.Add(time.Second)
		start(fmt.Sprintf("m%02d", i))
	}
	if _, _, err := a.Session(ctx, "m00"); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("the oldest session beyond the bound: %v, want Unauthorized", err)
	}
	if _, _, err := a.Session(ctx, "m01"); err != nil {
		t.Errorf("the oldest session kept: %v", err)
	}

	if err := a.DeleteToken(ctx, sys, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Session(ctx, "m01"); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("a session of a deleted token: %v, want Unauthorized", err)
	}
}
