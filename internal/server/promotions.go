package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/promote"
)

type promotionJSON struct {
	ID          string    `json:"id"`
	Release     string    `json:"release"`
	Digest      string    `json:"digest"`
	Environment string    `json:"environment"`
	From        string    `json:"from"`
	State       string    `json:"state"`
	RequestedBy string    `json:"requestedBy"`
	Rollback    bool      `json:"rollback"`
	Emergency   bool      `json:"emergency,omitempty"`
	Auto        bool      `json:"auto,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Previous    string    `json:"previous,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Gates       gatesJSON `json:"gates"`
}

type gatesJSON struct {
	Checks    []checkJSON            `json:"checks"`
	Checklist []domain.ChecklistItem `json:"checklist"`
	Approvals approvalsJSON          `json:"approvals"`
	WaitUntil *time.Time             `json:"waitUntil,omitempty"`
	Freeze    *promote.Frozen        `json:"freeze,omitempty"`
}

type checkJSON struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	URL     string `json:"url,omitempty"`
	Message string `json:"message,omitempty"`
}

type approvalsJSON struct {
	Required int            `json:"required"`
	Groups   []string       `json:"groups"`
	Given    []approvalJSON `json:"given"`
}

type approvalJSON struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

func (s *Server) promotionOf(p domain.Promotion) promotionJSON {
	out := promotionJSON{ID: p.ID, Release: p.Release, Digest: p.Digest, Environment: p.Environment, From: p.From, State: string(p.State),
		RequestedBy: p.RequestedBy, Rollback: p.Rollback, Emergency: p.Emergency, Auto: p.Auto, CreatedAt: p.CreatedAt.UTC(),
		UpdatedAt: p.UpdatedAt.UTC(), Previous: p.Previous, Reason: p.Reason}
	g := gatesJSON{Checks: []checkJSON{}, Checklist: p.Checklist, Approvals: approvalsJSON{Required: promote.Required(p), Groups: []string{}, Given: []approvalJSON{}}}
	if g.Checklist == nil {
		g.Checklist = []domain.ChecklistItem{}
	}
	for _, c := range p.Checks {
		g.Checks = append(g.Checks, checkJSON{Name: c.Name, Type: c.Type, Status: c.Status, URL: c.URL, Message: c.Message})
	}
	if a := p.Gates.Approvals; a != nil && a.Groups != nil {
		g.Approvals.Groups = a.Groups
	}
	for _, a := range p.Approvals {
		g.Approvals.Given = append(g.Approvals.Given, approvalJSON{By: a.By, At: a.At.UTC()})
	}
	if !p.WaitUntil.IsZero() {
		w := p.WaitUntil.UTC()
		g.WaitUntil = &w
	}
	if p.State == domain.PromotionApproved {
		if f, err := promote.FrozenAt(p.Gates.Freeze, s.now()); err == nil && f != nil {
			g.Freeze = f
		}
	}
	out.Gates = g
	return out
}

func (s *Server) now() time.Time {
	if s.opts.Clock != nil {
		return s.opts.Clock()
	}
	return time.Now()
}

type promoteRequest struct {
	Release     string `json:"release"`
	Environment string `json:"environment"`
	Rollback    bool   `json:"rollback"`
	Emergency   bool   `json:"emergency"`
}

func (s *Server) createPromotion(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req promoteRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Release == "" && req.Rollback {
		// No release named: roll back to the one the environment ran before.
		pr, err := s.app.Rollback(r.Context(), p, req.Environment, "", req.Emergency)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, s.promotionOf(pr))
	}
	pr, err := s.app.Promote(r.Context(), p, app.PromoteRequest{Release: req.Release, Environment: req.Environment, Rollback: req.Rollback, Emergency: req.Emergency})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.promotionOf(pr))
}

func (s *Server) listPromotions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var fe errs.FieldErrors
	limit := limitQuery(r, 100, &fe)
	if err := fe.Err(); err != nil {
		return err
	}
	env, _ := queryValue(r.URL.RawQuery, "environment")
	state, _ := queryValue(r.URL.RawQuery, "state")
	prs, err := s.app.ListPromotions(r.Context(), p, domain.PromotionFilter{Environment: env, State: domain.PromotionState(state), Limit: limit})
	if err != nil {
		return err
	}
	out := make([]promotionJSON, 0, len(prs))
	for _, pr := range prs {
		out = append(out, s.promotionOf(pr))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"promotions": out})
}

func (s *Server) getPromotion(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	pr, err := s.app.GetPromotion(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.promotionOf(pr))
}

// promotionAction answers a change of a promotion with its new state.
func (s *Server) promotionAction(fn func(r *http.Request, p *auth.Principal, id string) (domain.Promotion, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		pr, err := fn(r, p, r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, s.promotionOf(pr))
	}
}

type rejectRequest struct {
	Reason string `json:"reason"`
}

type checkRequest struct {
	Status  string `json:"status"`
	URL     string `json:"url"`
	Message string `json:"message"`
}

type tickRequest struct {
	Done *bool `json:"done"`
}

func (s *Server) approvePromotion(r *http.Request, p *auth.Principal, id string) (domain.Promotion, error) {
	return s.app.Approve(r.Context(), p, id)
}

func (s *Server) rejectPromotion(r *http.Request, p *auth.Principal, id string) (domain.Promotion, error) {
	var req rejectRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return domain.Promotion{}, err
		}
	}
	return s.app.Reject(r.Context(), p, id, req.Reason)
}

func (s *Server) cancelPromotion(r *http.Request, p *auth.Principal, id string) (domain.Promotion, error) {
	return s.app.Cancel(r.Context(), p, id)
}

func (s *Server) reportCheck(r *http.Request, p *auth.Principal, id string) (domain.Promotion, error) {
	var req checkRequest
	if err := decodeJSON(r, &req); err != nil {
		return domain.Promotion{}, err
	}
	if len(req.URL) > 2048 || len(req.Message) > 1000 {
		return domain.Promotion{}, errs.Field("url", "a check's url is at most 2048 bytes and its message at most 1000")
	}
	return s.app.ReportCheck(r.Context(), p, id, r.PathValue("name"), req.Status, req.URL, req.Message)
}

func (s *Server) tickChecklist(r *http.Request, p *auth.Principal, id string) (domain.Promotion, error) {
	var req tickRequest
	if err := decodeJSON(r, &req); err != nil {
		return domain.Promotion{}, err
	}
	if req.Done == nil || !*req.Done {
		return domain.Promotion{}, errs.Field("done", "must be true: a ticked item stays ticked")
	}
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		return domain.Promotion{}, errs.E(errs.Invalid, "checklist index %q is not a whole number", r.PathValue("index"))
	}
	return s.app.TickChecklist(r.Context(), p, id, i)
}
