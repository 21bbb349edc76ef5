package server

import (
	"net/http"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// Flag change requests of restricted environments (internal/app
// flagchanges.go): PATCH …/flags/{key} answers 202 with one; these routes
// list, show, approve, reject and cancel them.

// flagChangeJSON is a flag change request as the API shows it.
type flagChangeJSON struct {
	ID          string            `json:"id"`
	Environment string            `json:"environment"`
	Flag        string            `json:"flag"`
	Change      domain.FlagFields `json:"change"`
	State       string            `json:"state"`
	RequestedBy string            `json:"requestedBy"`
	CreatedAt   time.Time         `json:"createdAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	Release     string            `json:"release"`
	Digest      string            `json:"digest"`
	Reason      string            `json:"reason,omitempty"`
	Approvals   approvalsJSON     `json:"approvals"`
}

func flagChangeOf(fc domain.FlagChange) flagChangeJSON {
	out := flagChangeJSON{ID: fc.ID, Environment: fc.Environment, Flag: fc.Key, Change: fc.Change, State: string(fc.State),
		RequestedBy: fc.RequestedBy, CreatedAt: fc.CreatedAt.UTC(), UpdatedAt: fc.UpdatedAt.UTC(), Release: fc.Release,
		Digest: fc.Digest, Reason: fc.Reason,
		Approvals: approvalsJSON{Required: fc.Gate.Required, Groups: []string{}, Given: []approvalJSON{}}}
	if fc.Gate.Groups != nil {
		out.Approvals.Groups = fc.Gate.Groups
	}
	for _, a := range fc.Approvals {
		out.Approvals.Given = append(out.Approvals.Given, approvalJSON{By: a.By, At: a.At.UTC()})
	}
	return out
}

func (s *Server) listFlagChanges(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var fe errs.FieldErrors
	limit := limitQuery(r, 100, &fe)
	if err := fe.Err(); err != nil {
		return err
	}
	state, _ := queryValue(r.URL.RawQuery, "state")
	flag, _ := queryValue(r.URL.RawQuery, "flag")
	fcs, err := s.app.ListFlagChanges(r.Context(), p, domain.FlagChangeFilter{Environment: r.PathValue("env"), Key: flag,
		State: domain.FlagChangeState(state), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]flagChangeJSON, 0, len(fcs))
	for _, fc := range fcs {
		out = append(out, flagChangeOf(fc))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"changes": out})
}

func (s *Server) getFlagChange(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	fc, err := s.app.GetFlagChange(r.Context(), p, r.PathValue("env"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, flagChangeOf(fc))
}

// flagChangeAction answers an action on a change request with its new
// state.
func (s *Server) flagChangeAction(fn func(r *http.Request, p *auth.Principal, env, id string) (domain.FlagChange, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		fc, err := fn(r, p, r.PathValue("env"), r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, flagChangeOf(fc))
	}
}

func (s *Server) approveFlagChange(r *http.Request, p *auth.Principal, env, id string) (domain.FlagChange, error) {
	return s.app.ApproveFlagChange(r.Context(), p, env, id)
}

func (s *Server) rejectFlagChange(r *http.Request, p *auth.Principal, env, id string) (domain.FlagChange, error) {
	var req rejectRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return domain.FlagChange{}, err
		}
	}
	return s.app.RejectFlagChange(r.Context(), p, env, id, req.Reason)
}

func (s *Server) cancelFlagChange(r *http.Request, p *auth.Principal, env, id string) (domain.FlagChange, error) {
	return s.app.CancelFlagChange(r.Context(), p, env, id)
}
