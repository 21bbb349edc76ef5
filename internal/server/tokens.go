package server

import (
	"errors"
	"net/http"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

type tokenRequest struct {
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Environments []string `json:"environments"`
	Groups       []string `json:"groups"`
}

// tokenJSON describes a token; never its text or hash.
type tokenJSON struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	Environments []string  `json:"environments"`
	Groups       []string  `json:"groups"`
	CreatedAt    time.Time `json:"createdAt"`
	CreatedBy    string    `json:"createdBy,omitempty"`
}

func tokenOf(t store.Token) tokenJSON {
	out := tokenJSON{ID: t.ID, Name: t.Name, Role: t.Role, Environments: t.Environments, Groups: t.Groups, CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy}
	if out.Environments == nil {
		out.Environments = []string{}
	}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	return out
}

const maxNameLen = 100

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

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req tokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var fe fieldErrors
	switch {
	case req.Name == "":
		fe.add("name", "required: say who or what the token is for")
	case utf8.RuneCountInString(req.Name) > maxNameLen:
		fe.add("name", "at most %d characters", maxNameLen)
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		_, msg, _ := errs.Public(err)
		fe.add("role", "%s", msg)
	} else if err := auth.ValidateScope(role, req.Environments); err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			fe = append(fe, e.Fields...)
		}
	}
	seen := map[string]bool{}
	for i, env := range req.Environments {
		switch {
		case env == "":
			fe.add("environments", "item %d is empty", i)
		case seen[env]:
			fe.add("environments", "%q is listed twice", env)
		}
		seen[env] = true
	}
	for i, g := range req.Groups {
		if g == "" || len(g) > maxNameLen {
			fe.add("groups", "item %d must be 1 to %d characters", i, maxNameLen)
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	if err := withinScope(p, req.Environments); err != nil {
		return err
	}
	token, hash, err := auth.NewToken(s.rand)
	if err != nil {
		return err
	}
	id, err := s.newID("tok_")
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := store.Token{ID: id, Name: req.Name, Hash: hash, Role: string(role), Environments: req.Environments, Groups: req.Groups, CreatedAt: now, CreatedBy: p.Actor()}
	err = s.st.WithTx(r.Context(), func(tx store.Tx) error {
		// A scope naming an environment nobody defined is most likely a typo.
		var unknown fieldErrors
		for _, env := range req.Environments {
			if _, err := tx.GetEnvironment(r.Context(), env); errs.Is(err, errs.NotFound) {
				unknown.add("environments", "unknown environment %q", env)
			} else if err != nil {
				return err
			}
		}
		if err := unknown.err(); err != nil {
			return err
		}
		if err := tx.InsertToken(r.Context(), t); err != nil {
			return err
		}
		if _, err := s.audit.Append(r.Context(), tx, now, audit.Record{Actor: p.Actor(), Action: "token.create", Target: id,
			Details: map[string]any{"name": t.Name, "role": t.Role, "environments": t.Environments, "groups": t.Groups}}); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "token", ID: id})
		return nil
	})
	if err != nil {
		return err
	}
	out := struct {
		tokenJSON
		Token string `json:"token"`
	}{tokenOf(t), token}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ts, err := s.st.ListTokens(r.Context())
	if err != nil {
		return err
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].CreatedAt.Before(ts[j].CreatedAt) })
	out := make([]tokenJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenOf(t))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.st.WithTx(ctx, func(tx store.Tx) error {
		ts, err := tx.ListTokens(ctx)
		if err != nil {
			return err
		}
		var target *store.Token
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
		// Nobody could create tokens or change environments any more.
		if target.Role == string(auth.Admin) && len(target.Environments) == 0 && admins == 1 {
			return errs.E(errs.Conflict, "token %s is the last admin token for every environment; create another before deleting it", id)
		}
		if err := tx.DeleteToken(ctx, id); err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		if _, err := s.audit.Append(ctx, tx, now, audit.Record{Actor: p.Actor(), Action: "token.delete", Target: id,
			Details: map[string]string{"name": target.Name, "role": target.Role}}); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "token", ID: id})
		return nil
	})
	if err != nil {
		return err
	}
	// This replica forgets the token at once, not only when the event arrives.
	s.tokens.clear()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
