package server

import (
	"net/http"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
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

func tokenOf(t domain.Token) tokenJSON {
	out := tokenJSON{ID: t.ID, Name: t.Name, Role: t.Role, Environments: t.Environments, Groups: t.Groups, CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy}
	if out.Environments == nil {
		out.Environments = []string{}
	}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	return out
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req tokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	t, text, err := s.app.CreateToken(r.Context(), p, app.TokenRequest(req))
	if err != nil {
		return err
	}
	out := struct {
		tokenJSON
		Token string `json:"token"`
	}{tokenOf(t), text}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ts, err := s.app.ListTokens(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]tokenJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenOf(t))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.app.DeleteToken(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
