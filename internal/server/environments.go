package server

import (
	"net/http"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// listEnvironments answers from the snapshot (so it works while the store
// is down) and shows only the environments the token is scoped to.
func (s *Server) listEnvironments(w http.ResponseWriter, _ *http.Request, p *auth.Principal) error {
	snap := s.snap.Load()
	out := make([]domain.Environment, 0, len(snap.envs))
	for _, st := range snap.envs {
		if p.InScope(st.env.Name) {
			out = append(out, st.env)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"environments": out})
}

type setReleaseRequest struct {
	Release string `json:"release"`
}

func (s *Server) putRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req setReleaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Release == "" {
		return errs.Field("release", "required: the ID of the release to make current")
	}
	env := r.PathValue("env")
	prev, err := s.app.SetRelease(r.Context(), p, env, req.Release)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"environment": env, "release": req.Release, "previous": prev})
}
