package app

import (
	"context"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// Web UI sessions live in the store so that every replica accepts a
// session cookie another one set. Signing in and out is logged by the UI,
// not audited: a session changes nothing of what the audit log describes.

// MaxSessionsPerToken bounds the sessions one token holds; signing in
// again beyond it ends the oldest.
const MaxSessionsPerToken = 50

// tokenPrincipal is the principal a token signs in as.
func tokenPrincipal(t domain.Token) auth.Principal {
	return auth.Principal{TokenID: t.ID, Name: t.Name, Role: auth.Role(t.Role), Environments: t.Environments, Groups: t.Groups}
}

// StartSession stores s, a new sign-in of p (s.TokenID is p's token),
// removing expired sessions and p's oldest beyond MaxSessionsPerToken.
// SDK keys are for applications and never sign in.
func (a *App) StartSession(ctx context.Context, p *auth.Principal, s domain.Session) error {
	if p.Role == auth.SDK {
		return errs.E(errs.Forbidden, "SDK keys are for applications; sign in with a personal token")
	}
	if s.IDHash == "" || s.CSRF == "" || !s.ExpiresAt.After(s.CreatedAt) {
		return errs.E(errs.Internal, "a session without ID hash, CSRF token or lifetime")
	}
	s.TokenID = p.TokenID
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		if _, err := t.DeleteSessions(ctx, t.at, p.TokenID, MaxSessionsPerToken-1); err != nil {
			return err
		}
		return t.InsertSession(ctx, s)
	})
}

// Session is the session whose ID hashes to idHash and the principal of
// its token; Unauthorized when there is none (signed out, token revoked)
// or it expired.
func (a *App) Session(ctx context.Context, idHash string) (domain.Session, auth.Principal, error) {
	s, t, err := a.st.GetSession(ctx, idHash)
	if errs.Is(err, errs.NotFound) {
		return domain.Session{}, auth.Principal{}, errs.E(errs.Unauthorized, "signed out, or the token was revoked")
	}
	if err != nil {
		return domain.Session{}, auth.Principal{}, err
	}
	if !a.now().Before(s.ExpiresAt) {
		return domain.Session{}, auth.Principal{}, errs.E(errs.Unauthorized, "the session expired at %s", s.ExpiresAt.Format(time.RFC3339))
	}
	return s, tokenPrincipal(t), nil
}

// EndSession signs out: the session whose ID hashes to idHash is gone on
// every replica. One already gone is no error.
func (a *App) EndSession(ctx context.Context, idHash string) error {
	err := a.write(ctx, func(ctx context.Context, t *txn) error { return t.DeleteSession(ctx, idHash) })
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}
