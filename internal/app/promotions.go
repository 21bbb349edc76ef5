package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/promote"
)

// checkLease is how long a replica holds a server-side check it runs; a
// lease that ran out (the replica died) is taken over.
const checkLease = 2 * time.Minute

// promotions is the App's promotion machinery: the runner's wake-up,
// this replica's name for check leases, and webhook deliveries in flight.
type promotions struct {
	kick    chan struct{}
	replica string
	hooks   sync.WaitGroup
}

// PromoteRequest opens a promotion.
type PromoteRequest struct {
	Release     string
	Environment string
	// Rollback insists that Release was current in the environment before.
	Rollback bool
	// Emergency skips the wait timer (never another gate); approvers and
	// admins only, audited.
	Emergency bool
}

func principalOf(p *auth.Principal) promote.Principal {
	return promote.Principal{TokenID: p.TokenID, Actor: p.Actor(), Groups: p.Groups, Admin: p.Role == auth.Admin}
}

// Promote opens a promotion of req.Release into req.Environment, gated by
// the environment's current promotion block.
func (a *App) Promote(ctx context.Context, p *auth.Principal, req PromoteRequest) (domain.Promotion, error) {
	var fe errs.FieldErrors
	if req.Release == "" {
		fe.Add("release", "required: the ID of the release to promote")
	}
	if req.Environment == "" {
		fe.Add("environment", "required: the environment to promote into")
	}
	if err := fe.Err(); err != nil {
		return domain.Promotion{}, err
	}
	if err := p.Can(auth.Promote, req.Environment); err != nil {
		return domain.Promotion{}, err
	}
	if req.Emergency {
		if err := p.Can(auth.ApprovePromotion, req.Environment); err != nil {
			return domain.Promotion{}, errs.E(errs.Forbidden, "an emergency promotion skips the wait timer: approvers and admins only (%s)", msgOf(err))
		}
	}
	return a.open(ctx, p.Actor(), p.TokenID, req, false)
}

func msgOf(err error) string {
	_, msg, _ := errs.Public(err)
	return msg
}

// open opens a promotion (auto: the server opened it itself).
func (a *App) open(ctx context.Context, actor, tokenID string, req PromoteRequest, auto bool) (domain.Promotion, error) {
	env := req.Environment
	def, defErr := a.definitionIn(ctx, req.Release, env)
	if errs.Is(defErr, errs.NotFound) {
		return domain.Promotion{}, defErr
	}
	id, err := a.newID("pro_")
	if err != nil {
		return domain.Promotion{}, err
	}
	var pr domain.Promotion
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		e, err := t.GetEnvironment(ctx, env)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown environment %q", env)
		}
		if err != nil {
			return err
		}
		if !e.Promoted {
			return errs.E(errs.Conflict, "environment %q has no promotion block: its release is set directly (PUT /api/v1/environments/%s/release)", env, env)
		}
		if defErr != nil {
			return defErr
		}
		gates, err := a.gatesFor(ctx, e, def)
		if err != nil {
			return err
		}
		if e.Release == req.Release {
			return errs.E(errs.Conflict, "gate from: release %s is already current in %s", req.Release, env)
		}
		from, err := t.GetEnvironment(ctx, gates.From)
		if err != nil {
			return err
		}
		rollback := false
		if from.Release != req.Release || req.Rollback {
			hist, err := t.History(ctx, env, 0)
			if err != nil {
				return err
			}
			rollback = slices.ContainsFunc(hist, func(as domain.Assignment) bool { return as.Release == req.Release })
			if !rollback {
				running := from.Release
				if running == "" {
					running = "no release"
				}
				if req.Rollback {
					return errs.E(errs.Conflict, "gate rollback: release %s was never current in %s, so it is no rollback", req.Release, env)
				}
				return errs.E(errs.Conflict, "gate from: release %s is not current in %s (it runs %s) and was never current in %s, so it is no rollback either",
					req.Release, gates.From, running, env)
			}
		}
		relRow, err := t.GetRelease(ctx, req.Release)
		if err != nil {
			return err
		}
		relRow.Files = nil
		pr = promote.Open(id, relRow, env, *gates, actor, tokenID, rollback, req.Emergency, t.at)
		pr.Auto = auto
		if err := t.InsertPromotion(ctx, pr); err != nil {
			return err
		}
		if err := t.record(actor, domain.ActionPromotionCreate, pr.ID, map[string]any{"environment": env, "release": pr.Release,
			"from": pr.From, "rollback": rollback, "emergency": req.Emergency, "auto": auto, "digest": pr.Digest}); err != nil {
			return err
		}
		a.notifyPromotion(t, pr, "promotion.created")
		return a.step(ctx, t, &pr, actor, def)
	})
	if err != nil {
		return domain.Promotion{}, err
	}
	a.Kick()
	return pr, nil
}

// gatesFor is env's promotion gates: stored with it, else (environments
// stored before promotions kept them) read from its current release's
// envplane.yaml, else, for an empty one, the definition it is about to take.
func (a *App) gatesFor(ctx context.Context, e domain.Environment, incoming domain.Environment) (*domain.PromotionGates, error) {
	if e.Gates != nil {
		return e.Gates, nil
	}
	if e.Release != "" {
		cur, err := a.definitionIn(ctx, e.Release, e.Name)
		if err != nil {
			return nil, err
		}
		if cur.Gates != nil {
			return cur.Gates, nil
		}
	}
	if incoming.Gates != nil {
		return incoming.Gates, nil
	}
	return nil, errs.E(errs.Conflict, "environment %q has no promotion gates on record", e.Name)
}

// step advances pr as far as its gates allow, applying it when they all
// passed; it stores pr and writes the audit entries of its transitions.
func (a *App) step(ctx context.Context, t *txn, pr *domain.Promotion, actor string, def domain.Environment) error {
	before := pr.State
	st, err := promote.Advance(pr, t.at)
	if err != nil {
		return errs.Wrap(errs.Conflict, err, "promotion %s: its gates cannot be evaluated", pr.ID)
	}
	if !st.Apply {
		if err := t.UpdatePromotion(ctx, *pr); err != nil {
			return err
		}
	}
	if pr.State != before {
		// Reaching approved and applying in the same step writes both
		// entries: the transition, then the apply.
		if err := a.recordTransition(t, pr, before, actor); err != nil {
			return err
		}
	}
	if st.Apply {
		return a.apply(ctx, t, pr, actor, def)
	}
	return nil
}

// recordTransition writes the audit entry and events of pr's move from
// before to its state.
func (a *App) recordTransition(t *txn, pr *domain.Promotion, before domain.PromotionState, actor string) error {
	action, event := domain.ActionPromotionAdvance, ""
	switch pr.State {
	case domain.PromotionFailed:
		action, event = domain.ActionPromotionFail, "promotion.failed"
	case domain.PromotionApproved:
		event = "promotion.approved"
	}
	details := map[string]any{"environment": pr.Environment, "release": pr.Release, "from": before, "to": pr.State}
	if pr.Reason != "" {
		details["reason"] = pr.Reason
	}
	if !pr.WaitUntil.IsZero() {
		details["waitUntil"] = pr.WaitUntil
	}
	if err := t.record(actor, action, pr.ID, details); err != nil {
		return err
	}
	a.notifyPromotion(t, *pr, event)
	return nil
}

// apply makes pr's release current in its environment, with the
// definition the release gives it, records the previous one and
// supersedes the other open promotions into the environment.
func (a *App) apply(ctx context.Context, t *txn, pr *domain.Promotion, actor string, def domain.Environment) error {
	e, err := t.GetEnvironment(ctx, pr.Environment)
	if err != nil {
		return err
	}
	def.Release, def.UpdatedAt = e.Release, t.at
	if !def.SameDefinition(e) {
		if err := t.UpsertEnvironment(ctx, def); err != nil {
			return err
		}
	}
	prev, err := t.SetRelease(ctx, pr.Environment, pr.Release, "promotion "+pr.ID, t.at)
	if err != nil {
		return err
	}
	promote.Applied(pr, prev, t.at)
	if err := t.UpdatePromotion(ctx, *pr); err != nil {
		return err
	}
	if err := t.record(actor, domain.ActionPromotionApply, pr.ID, map[string]any{"environment": pr.Environment, "release": pr.Release,
		"previous": prev, "rollback": pr.Rollback, "emergency": pr.Emergency, "digest": pr.Digest}); err != nil {
		return err
	}
	t.notify(domain.Event{Kind: domain.EventEnvironment, Environment: pr.Environment, ID: pr.Release})
	a.notifyPromotion(t, *pr, "promotion.applied")
	if err := a.staleFlagChanges(ctx, t, pr.Environment, pr.Release); err != nil {
		return err
	}
	open, err := t.ListPromotions(ctx, domain.PromotionFilter{Environment: pr.Environment, OpenOnly: true})
	if err != nil {
		return err
	}
	for _, o := range open {
		if o.ID == pr.ID {
			continue
		}
		promote.Supersede(&o, pr.ID, t.at)
		if err := t.UpdatePromotion(ctx, o); err != nil {
			return err
		}
		if err := t.record(actor, domain.ActionPromotionSupersede, o.ID, map[string]any{"environment": o.Environment, "release": o.Release, "by": pr.ID}); err != nil {
			return err
		}
		a.notifyPromotion(t, o, "")
	}
	return a.autoPromote(ctx, t, pr.Environment, pr.Release)
}

// notifyPromotion queues the promotion's SSE event on its target's stream
// and, for webhook events, the deliveries its gates ask for.
func (a *App) notifyPromotion(t *txn, pr domain.Promotion, hookEvent string) {
	t.notify(domain.Event{Kind: domain.EventPromotion, Environment: pr.Environment, ID: pr.ID, State: string(pr.State)})
	if hookEvent != "" {
		a.queueHooks(t, pr, hookEvent)
	}
}

// Kick wakes the promotion runner (checks to run, promotions to advance).
func (a *App) Kick() {
	select {
	case a.promos.kick <- struct{}{}:
	default:
	}
}

// ListPromotions lists the promotions of the token's environments, newest
// first.
func (a *App) ListPromotions(ctx context.Context, p *auth.Principal, f domain.PromotionFilter) ([]domain.Promotion, error) {
	if err := p.Can(auth.ReadPromotions, f.Environment); err != nil {
		return nil, err
	}
	if f.State != "" && !slices.Contains(allStates, f.State) {
		return nil, errs.Field("state", "unknown state "+string(f.State)+": use checking, awaiting-approval, approved, applied, failed, rejected, cancelled or superseded")
	}
	all, err := a.st.ListPromotions(ctx, f)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, pr := range all {
		if p.InScope(pr.Environment) {
			out = append(out, pr)
		}
	}
	return out, nil
}

var allStates = []domain.PromotionState{domain.PromotionChecking, domain.PromotionAwaitingApproval, domain.PromotionApproved,
	domain.PromotionApplied, domain.PromotionFailed, domain.PromotionRejected, domain.PromotionCancelled, domain.PromotionSuperseded}

// GetPromotion returns one promotion of the token's environments.
func (a *App) GetPromotion(ctx context.Context, p *auth.Principal, id string) (domain.Promotion, error) {
	if err := p.Can(auth.ReadPromotions, ""); err != nil {
		return domain.Promotion{}, err
	}
	pr, err := a.st.GetPromotion(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return pr, errs.E(errs.NotFound, "unknown promotion %q", id)
	}
	if err != nil {
		return pr, err
	}
	if !p.InScope(pr.Environment) {
		return domain.Promotion{}, errs.E(errs.Forbidden, "token is not scoped to environment %q", pr.Environment)
	}
	return pr, nil
}

// act runs one change of a promotion by p: authorized as action on the
// promotion's environment, in one transaction with its audit entry, then
// advanced (and applied when every gate passed).
func (a *App) act(ctx context.Context, p *auth.Principal, action auth.Action, id string, audit domain.AuditAction, details map[string]any,
	change func(pr *domain.Promotion, now time.Time) error) (domain.Promotion, error) {
	if err := p.Can(action, ""); err != nil {
		return domain.Promotion{}, err
	}
	cur, err := a.GetPromotion(ctx, p, id)
	if err != nil {
		return cur, err
	}
	if err := p.Can(action, cur.Environment); err != nil {
		return cur, err
	}
	def, err := a.definitionIn(ctx, cur.Release, cur.Environment)
	if err != nil {
		return cur, err
	}
	var pr domain.Promotion
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		if pr, err = t.GetPromotion(ctx, id); err != nil {
			return err
		}
		if err := change(&pr, t.at); err != nil {
			return err
		}
		if details == nil {
			details = map[string]any{}
		}
		details["environment"], details["release"] = pr.Environment, pr.Release
		if err := t.record(p.Actor(), audit, pr.ID, details); err != nil {
			return err
		}
		event := ""
		switch pr.State {
		case domain.PromotionRejected:
			event = "promotion.rejected"
		}
		a.notifyPromotion(t, pr, event)
		return a.step(ctx, t, &pr, p.Actor(), def)
	})
	if err != nil {
		return domain.Promotion{}, err
	}
	a.Kick()
	return pr, nil
}

// Approve counts p's approval.
func (a *App) Approve(ctx context.Context, p *auth.Principal, id string) (domain.Promotion, error) {
	return a.act(ctx, p, auth.ApprovePromotion, id, domain.ActionPromotionApprove, map[string]any{"groups": p.Groups},
		func(pr *domain.Promotion, now time.Time) error { return promote.Approve(pr, principalOf(p), now) })
}

// Reject ends a promotion: an approver said no.
func (a *App) Reject(ctx context.Context, p *auth.Principal, id, reason string) (domain.Promotion, error) {
	return a.act(ctx, p, auth.ApprovePromotion, id, domain.ActionPromotionReject, map[string]any{"reason": reason},
		func(pr *domain.Promotion, now time.Time) error {
			return promote.Reject(pr, principalOf(p), reason, now)
		})
}

// Cancel withdraws a promotion: its requester's, or any for an admin.
func (a *App) Cancel(ctx context.Context, p *auth.Principal, id string) (domain.Promotion, error) {
	return a.act(ctx, p, auth.Promote, id, domain.ActionPromotionCancel, nil,
		func(pr *domain.Promotion, now time.Time) error { return promote.Cancel(pr, principalOf(p), now) })
}

// ReportCheck records an external check's result, as CI reports it.
func (a *App) ReportCheck(ctx context.Context, p *auth.Principal, id, name, status, url, message string) (domain.Promotion, error) {
	return a.act(ctx, p, auth.Promote, id, domain.ActionPromotionCheck, map[string]any{"check": name, "status": status, "url": url},
		func(pr *domain.Promotion, now time.Time) error {
			return promote.Report(pr, name, status, url, message, principalOf(p), now)
		})
}

// TickChecklist marks checklist item index done.
func (a *App) TickChecklist(ctx context.Context, p *auth.Principal, id string, index int) (domain.Promotion, error) {
	return a.act(ctx, p, auth.Promote, id, domain.ActionPromotionChecklist, map[string]any{"index": index},
		func(pr *domain.Promotion, now time.Time) error { return promote.Tick(pr, index, principalOf(p), now) })
}

// Rollback opens a promotion of the release env ran before its current
// one; to, when given, is the release the caller confirmed, refused
// (Conflict) when a newer release has changed what "before" means.
func (a *App) Rollback(ctx context.Context, p *auth.Principal, env, to string, emergency bool) (domain.Promotion, error) {
	if err := p.Can(auth.Promote, env); err != nil {
		return domain.Promotion{}, err
	}
	hist, err := a.st.History(ctx, env, 0)
	if errs.Is(err, errs.NotFound) {
		return domain.Promotion{}, errs.E(errs.NotFound, "unknown environment %q", env)
	}
	if err != nil {
		return domain.Promotion{}, err
	}
	if len(hist) == 0 || hist[0].Previous == "" {
		return domain.Promotion{}, errs.E(errs.Conflict, "gate rollback: %s has no previous release to roll back to", env)
	}
	if to != "" && to != hist[0].Previous {
		// The caller confirmed a rollback to another release (a page shown
		// before a newer release landed): it must look again.
		return domain.Promotion{}, errs.E(errs.Conflict, "gate rollback: %s would now roll back to %s, not %s: look again before confirming", env, hist[0].Previous, to)
	}
	return a.Promote(ctx, p, PromoteRequest{Release: hist[0].Previous, Environment: env, Rollback: true, Emergency: emergency})
}
