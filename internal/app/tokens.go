package app

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// Bounds on a token request.
const (
	maxNameLen     = 100
	maxScopeLength = 64 // environments or groups of one token
)

// TokenRequest asks for a new token.
type TokenRequest struct {
	Name         string
	Role         string
	Environments []string
	Groups       []string
}

// check reports every problem of the request.
func (r TokenRequest) check() (auth.Role, error) {
	var fe errs.FieldErrors
	switch {
	case r.Name == "":
		fe.Add("name", "required: say who or what the token is for")
	case !utf8.ValidString(r.Name):
		fe.Add("name", "must be valid UTF-8")
	case utf8.RuneCountInString(r.Name) > maxNameLen:
		fe.Add("name", "at most %d characters", maxNameLen)
	}
	role, err := auth.ParseRole(r.Role)
	if err != nil {
		_, msg, _ := errs.Public(err)
		fe.Add("role", "%s", msg)
	} else if err := auth.ValidateScope(role, r.Environments); err != nil {
		fe = append(fe, errs.FieldsOf(err)...)
	}
	checkNames := func(field string, names []string) {
		if len(names) > maxScopeLength {
			fe.Add(field, "at most %d items, got %d", maxScopeLength, len(names))
			return
		}
		seen := map[string]bool{}
		for i, n := range names {
			switch {
			case n == "" || len(n) > maxNameLen:
				fe.Add(field, "item %d must be 1 to %d characters", i, maxNameLen)
			case !utf8.ValidString(n):
				fe.Add(field, "item %d must be valid UTF-8", i)
			case seen[n]:
				fe.Add(field, "%q is listed twice", n)
			}
			seen[n] = true
		}
	}
	checkNames("environments", r.Environments)
	checkNames("groups", r.Groups)
	return role, fe.Err()
}

// withinScope keeps an admin scoped to some environments from creating or
// deleting tokens beyond them, which would widen its own reach.
func withinScope(p *auth.Principal, envs []string) error {
	if len(p.Environments) == 0 {
		return nil
	}
	if len(envs) == 0 {
		return errs.E(errs.Forbidden, "a token scoped to environments may only manage tokens within its environments")
	}
	for _, e := range envs {
		if !p.InScope(e) {
			return errs.E(errs.Forbidden, "token is not scoped to environment %q", e)
		}
	}
	return nil
}

// CreateToken makes a token and returns it with its text, shown only now.
func (a *App) CreateToken(ctx context.Context, p *auth.Principal, req TokenRequest) (domain.Token, string, error) {
	if err := p.Can(auth.ManageTokens, ""); err != nil {
		return domain.Token{}, "", err
	}
	role, err := req.check()
	if err != nil {
		return domain.Token{}, "", err
	}
	if err := withinScope(p, req.Environments); err != nil {
		return domain.Token{}, "", err
	}
	return a.insertToken(ctx, p.Actor(), req.Name, role, req.Environments, req.Groups, "", knownEnvironments(req.Environments))
}

// knownEnvironments refuses a scope naming an environment nobody defined:
// most likely a typo.
func knownEnvironments(envs []string) func(context.Context, *txn) (bool, error) {
	return func(ctx context.Context, tx *txn) (bool, error) {
		var unknown errs.FieldErrors
		for _, env := range envs {
			if _, err := tx.GetEnvironment(ctx, env); errs.Is(err, errs.NotFound) {
				unknown.Add("environments", "unknown environment %q", env)
			} else if err != nil {
				return false, err
			}
		}
		return unknown.Err() == nil, unknown.Err()
	}
}

// insertToken stores a new token (text given, or generated when empty) when
// pre, run first in the same transaction, says to proceed.
func (a *App) insertToken(ctx context.Context, actor, name string, role auth.Role, envs, groups []string, text string, pre func(context.Context, *txn) (bool, error)) (t domain.Token, _ string, err error) {
	hash := auth.HashToken(text)
	if text == "" {
		var err error
		if text, hash, err = auth.NewToken(a.rand); err != nil {
			return domain.Token{}, "", err
		}
	}
	id, err := a.newID("tok_")
	if err != nil {
		return domain.Token{}, "", err
	}
	err = a.write(ctx, func(ctx context.Context, tx *txn) error {
		if ok, err := pre(ctx, tx); !ok || err != nil {
			return err
		}
		t = domain.Token{ID: id, Name: name, Hash: hash, Role: string(role), Environments: envs, Groups: groups, CreatedAt: tx.at, CreatedBy: actor}
		if err := tx.InsertToken(ctx, t); err != nil {
			return err
		}
		if err := tx.record(actor, domain.ActionTokenCreate, id, map[string]any{"name": t.Name, "role": t.Role, "environments": t.Environments, "groups": t.Groups}); err != nil {
			return err
		}
		tx.notify(domain.Event{Kind: domain.EventToken, ID: id})
		return nil
	})
	return t, text, err
}

// Bootstrap creates the first admin token when the store holds none: token
// when given, else a generated one. created says whether it did; the text
// is returned only then.
func (a *App) Bootstrap(ctx context.Context, token string) (text string, created bool, err error) {
	if token != "" && (!strings.HasPrefix(token, auth.TokenPrefix) || len(token) < len(auth.TokenPrefix)+16) {
		return "", false, errs.E(errs.Invalid, "the bootstrap token must be ep_ and at least 16 more characters (every token starts with ep_, and a shorter one is no secret)")
	}
	// Checked in the write transaction: writers are serialized, so two
	// replicas starting together create one token.
	none := func(ctx context.Context, tx *txn) (bool, error) {
		existing, err := tx.ListTokens(ctx)
		return err == nil && len(existing) == 0, err
	}
	t, text, err := a.insertToken(ctx, "envplane", "bootstrap", auth.Admin, nil, nil, token, none)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap token: %w", err)
	}
	if t.ID == "" {
		return "", false, nil
	}
	return text, true, nil
}

// ListTokens lists the tokens p may manage, oldest first: every token for
// an unscoped admin, for a scoped one those within its environments.
func (a *App) ListTokens(ctx context.Context, p *auth.Principal) ([]domain.Token, error) {
	if err := p.Can(auth.ManageTokens, ""); err != nil {
		return nil, err
	}
	ts, err := a.st.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].CreatedAt.Before(ts[j].CreatedAt) })
	out := ts[:0]
	for _, t := range ts {
		if withinScope(p, t.Environments) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// DeleteToken revokes a token. The last unscoped admin token cannot go:
// nobody could create tokens or change environments any more.
func (a *App) DeleteToken(ctx context.Context, p *auth.Principal, id string) error {
	if err := p.Can(auth.ManageTokens, ""); err != nil {
		return err
	}
	return a.write(ctx, func(ctx context.Context, tx *txn) error {
		ts, err := tx.ListTokens(ctx)
		if err != nil {
			return err
		}
		var target *domain.Token
		admins := 0
		for i, t := range ts {
			if t.ID == id {
				target = &ts[i]
			}
			if t.Role == string(auth.Admin) && len(t.Environments) == 0 {
				admins++
			}
		}
		if target == nil {
			return errs.E(errs.NotFound, "unknown token %q", id)
		}
		if err := withinScope(p, target.Environments); err != nil {
			return err
		}
		if target.Role == string(auth.Admin) && len(target.Environments) == 0 && admins == 1 {
			return errs.E(errs.Conflict, "token %s is the last admin token for every environment; create another before deleting it", id)
		}
		if err := tx.DeleteToken(ctx, id); err != nil {
			return err
		}
		if err := tx.record(p.Actor(), domain.ActionTokenDelete, id, map[string]any{"name": target.Name, "role": target.Role, "environments": target.Environments}); err != nil {
			return err
		}
		tx.notify(domain.Event{Kind: domain.EventToken, ID: id})
		return nil
	})
}

// Authenticate finds the principal of a token's hash; Unauthorized when no
// token has it.
func (a *App) Authenticate(ctx context.Context, hash string) (auth.Principal, error) {
	t, err := a.st.GetTokenByHash(ctx, hash)
	if errs.Is(err, errs.NotFound) {
		return auth.Principal{}, errs.E(errs.Unauthorized, "unknown or revoked token")
	}
	if err != nil {
		return auth.Principal{}, err
	}
	return tokenPrincipal(t), nil
}
