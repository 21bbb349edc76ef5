package server

import (
	"net/http"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
)

// postDataOperation is POST /api/v1/environments/{env}/data-operations:
// `envplane data copy|seed --server` records a copy into, or a seed of,
// env (the audit entry data.copy or data.seed: tables, row counts, the
// rules' digest, never a value). The copy itself runs where the CLI runs;
// a refusal here (403, 404, 409) stops it before it writes.
func (s *Server) postDataOperation(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var op app.DataOperation
	if err := decodeJSON(r, &op); err != nil {
		return err
	}
	env := r.PathValue("env")
	if err := s.app.RecordDataOperation(r.Context(), p, env, op); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"environment": env, "kind": op.Kind, "phase": op.Phase})
}
