package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/flags"
	"github.com/envplane/envplane/internal/promote"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/workspace"
)

// Flag change requests: in a restricted environment a change of a flag
// (PATCH …/flags/{key}) does not apply at once; it waits, as a
// domain.FlagChange, for the approvals the environment's promotion block
// asks for (promote.CountApproval: the same rules as promotions), and
// applies in the transaction of its last approval. Approvals are tied to
// the flag's definition when the change was asked for (its variants and
// its override then): when either changed, the request no longer applies
// to what was approved and ends superseded or stale instead.

// MaxPendingFlagChanges bounds the pending change requests of one
// environment.
const MaxPendingFlagChanges = 100

// MaxPendingFlagChangesPerRequester bounds one token's share of them, so
// that one requester cannot fill the environment's and block everyone's
// changes (a kill switch among them).
const MaxPendingFlagChangesPerRequester = 25

// DefaultFlagApprovals is the approval gate of a restricted environment
// whose promotion block has no approvals (or asks for none): one approval
// by an approver or admin of the environment other than the requester.
var DefaultFlagApprovals = domain.GateApprovals{Required: 1}

// FlagChangeRequest is a change of one flag the server has checked against
// the flag (the App holds no compiled flags): Override is the flag's
// override with Change merged onto Before, the override the server saw
// (nil: none), under the variants (VariantsDigest) of Release.
type FlagChangeRequest struct {
	Environment    string
	Key            string
	Change         domain.FlagFields
	Override       domain.FlagOverride
	Before         *domain.FlagOverride
	Release        string
	VariantsDigest string
}

// flagDigest is what approvals of a change of a flag are tied to: its
// variants and the override it had.
func flagDigest(variants string, o *domain.FlagOverride) string {
	h := sha256.New()
	fmt.Fprintf(h, "variants %s\n", variants)
	if o != nil {
		if o.State != nil {
			fmt.Fprintf(h, "state %s\n", *o.State)
		}
		if o.DefaultVariant != nil {
			fmt.Fprintf(h, "defaultVariant %s\n", *o.DefaultVariant)
		}
		if o.Targeting != nil {
			fmt.Fprintf(h, "targeting %s\n", o.Targeting)
		}
		fmt.Fprintf(h, "at %d by %s\n", o.UpdatedAt.UnixMicro(), o.UpdatedBy)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func fieldsOf(o domain.FlagOverride) domain.FlagFields {
	return domain.FlagFields{State: o.State, DefaultVariant: o.DefaultVariant, Targeting: o.Targeting}
}

// overrideIn is the stored override of key in env (nil: none).
func overrideIn(ctx context.Context, t *txn, env, key string) (*domain.FlagOverride, error) {
	all, err := t.ListFlagOverrides(ctx, env)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(o domain.FlagOverride) bool { return o.Key == key })
	if i < 0 {
		return nil, nil
	}
	return &all[i], nil
}

// flagApprovals is the approval gate of flag changes in e.
func (a *App) flagApprovals(ctx context.Context, e domain.Environment) domain.GateApprovals {
	g := e.Gates
	if g == nil && e.Release != "" {
		if def, err := a.definitionIn(ctx, e.Release, e.Name); err == nil {
			g = def.Gates
		}
	}
	if g == nil || g.Approvals == nil || g.Approvals.Required < 1 {
		return DefaultFlagApprovals
	}
	out := *g.Approvals
	out.Groups = slices.Clone(out.Groups)
	return out
}

// RequestFlagChange opens a change request for a flag of a restricted
// environment. It refuses (409) when the environment is not restricted,
// or its release or the flag's override changed since the server checked
// the change (the caller retries on the new snapshot).
func (a *App) RequestFlagChange(ctx context.Context, p *auth.Principal, req FlagChangeRequest) (domain.FlagChange, error) {
	env := req.Environment
	if err := p.Can(auth.WriteFlags, env); err != nil {
		return domain.FlagChange{}, err
	}
	if req.Key == "" || req.VariantsDigest == "" {
		return domain.FlagChange{}, errs.E(errs.Internal, "flag change in %q without key or variants digest", env)
	}
	e, err := a.st.GetEnvironment(ctx, env)
	if errs.Is(err, errs.NotFound) {
		return domain.FlagChange{}, errs.E(errs.NotFound, "unknown environment %q", env)
	}
	if err != nil {
		return domain.FlagChange{}, err
	}
	gate := a.flagApprovals(ctx, e)
	id, err := a.newID("fch_")
	if err != nil {
		return domain.FlagChange{}, err
	}
	var fc domain.FlagChange
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		cur, err := t.GetEnvironment(ctx, env)
		if err != nil {
			return err
		}
		if cur.Protection != domain.ProtectionRestricted {
			return errs.E(errs.Conflict, "environment %q is %s, not restricted: its flags change directly", env, cur.Protection)
		}
		if cur.Release != req.Release || cur.Release != e.Release {
			return errs.E(errs.Conflict, "environment %q changed its release meanwhile: try the change again", env)
		}
		before, err := overrideIn(ctx, t, env, req.Key)
		if err != nil {
			return err
		}
		if flagDigest(req.VariantsDigest, before) != flagDigest(req.VariantsDigest, req.Before) {
			return errs.E(errs.Conflict, "the override of flag %q in %q changed meanwhile: try the change again", req.Key, env)
		}
		pending, err := t.ListFlagChanges(ctx, domain.FlagChangeFilter{Environment: env, State: domain.FlagChangePending, Limit: MaxPendingFlagChanges + 1})
		if err != nil {
			return err
		}
		mine := 0
		for _, q := range pending {
			if q.RequesterToken == p.TokenID {
				mine++
			}
		}
		if mine >= MaxPendingFlagChangesPerRequester {
			return errs.E(errs.Conflict, "you have %d pending flag change requests in %q, the most one token may have: cancel some first", mine, env)
		}
		if len(pending) >= MaxPendingFlagChanges {
			return errs.E(errs.Conflict, "environment %q has %d pending flag change requests, the most it keeps: approve, reject or cancel some first", env, len(pending))
		}
		fc = domain.FlagChange{ID: id, Environment: env, Key: req.Key, Change: req.Change, Override: fieldsOf(req.Override),
			Release: cur.Release, Variants: req.VariantsDigest, Digest: flagDigest(req.VariantsDigest, before),
			State: domain.FlagChangePending, RequestedBy: p.Actor(), RequesterToken: p.TokenID, Gate: gate,
			Approvals: []domain.Approval{}, CreatedAt: t.at, UpdatedAt: t.at}
		if err := t.InsertFlagChange(ctx, fc); err != nil {
			return err
		}
		details := changeDetails(fc)
		details["required"], details["groups"] = gate.Required, gate.Groups
		return a.recordFlagChange(t, fc, p.Actor(), domain.ActionFlagChangeRequest, details)
	})
	if err != nil {
		return domain.FlagChange{}, err
	}
	return fc, nil
}

func changeDetails(fc domain.FlagChange) map[string]any {
	d := map[string]any{"environment": fc.Environment, "flag": fc.Key, "digest": fc.Digest}
	if c := fc.Change; c.State != nil {
		d["state"] = *c.State
	}
	if c := fc.Change; c.DefaultVariant != nil {
		d["defaultVariant"] = *c.DefaultVariant
	}
	if c := fc.Change; c.Targeting != nil {
		d["targeting"] = string(c.Targeting)
	}
	return d
}

// recordFlagChange writes the audit entry of a change request's
// transition and queues its event on the environment's stream.
func (a *App) recordFlagChange(t *txn, fc domain.FlagChange, actor string, action domain.AuditAction, details map[string]any) error {
	if details == nil {
		details = map[string]any{"environment": fc.Environment, "flag": fc.Key}
	}
	if fc.Reason != "" {
		details["reason"] = fc.Reason
	}
	if err := t.record(actor, action, fc.ID, details); err != nil {
		return err
	}
	t.notify(domain.Event{Kind: domain.EventFlagChange, Environment: fc.Environment, ID: fc.ID, State: string(fc.State)})
	return nil
}

// ListFlagChanges lists env's flag change requests, newest first.
func (a *App) ListFlagChanges(ctx context.Context, p *auth.Principal, f domain.FlagChangeFilter) ([]domain.FlagChange, error) {
	if err := p.Can(auth.ReadPromotions, f.Environment); err != nil {
		return nil, err
	}
	if f.State != "" && !slices.Contains(domain.FlagChangeStates, f.State) {
		return nil, errs.Field("state", "unknown state "+string(f.State)+": use pending, applied, rejected, cancelled, superseded or stale")
	}
	if f.Environment == "" {
		return nil, errs.E(errs.Internal, "flag changes listed without an environment")
	}
	if _, err := a.st.GetEnvironment(ctx, f.Environment); errs.Is(err, errs.NotFound) {
		return nil, errs.E(errs.NotFound, "unknown environment %q", f.Environment)
	} else if err != nil {
		return nil, err
	}
	out, err := a.st.ListFlagChanges(ctx, f)
	if out == nil && err == nil {
		out = []domain.FlagChange{}
	}
	return out, err
}

// GetFlagChange returns change request id of env.
func (a *App) GetFlagChange(ctx context.Context, p *auth.Principal, env, id string) (domain.FlagChange, error) {
	if err := p.Can(auth.ReadPromotions, env); err != nil {
		return domain.FlagChange{}, err
	}
	fc, err := a.st.GetFlagChange(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && fc.Environment != env) {
		return domain.FlagChange{}, errs.E(errs.NotFound, "no flag change request %q in environment %q", id, env)
	}
	return fc, err
}

// flagNow is the variants digest of flag key of env under env's current
// release, read outside the write transaction (loading a release is not
// cheap); the transaction checks the release is still current. "" when the
// release has no such flag.
func (a *App) flagNow(ctx context.Context, fc domain.FlagChange) (rel, variants string, err error) {
	e, err := a.st.GetEnvironment(ctx, fc.Environment)
	if err != nil {
		return "", "", err
	}
	if e.Release == fc.Release {
		return e.Release, fc.Variants, nil
	}
	if e.Release == "" {
		return "", "", nil
	}
	set, err := releaseFlags(ctx, a.st, e.Release, fc.Environment)
	if err != nil {
		return "", "", err
	}
	return e.Release, variantsIn(set, fc.Key), nil
}

// releaseFlags is the flag set of release id for env (none when the
// release does not load or has no flag files).
func releaseFlags(ctx context.Context, r store.Reader, id, env string) (*flags.Set, error) {
	rel, err := r.GetRelease(ctx, id)
	if err != nil {
		return nil, err
	}
	ws, err := workspace.Load(release.FS(rel.Files))
	if err != nil || len(ws.Flags) == 0 {
		return nil, nil // a release that does not load has no flags
	}
	return flags.ReadFS(ws.FS, ws.Flags).Set(env), nil
}

// variantsIn is the variants digest of flag key in set ("" without it).
func variantsIn(set *flags.Set, key string) string {
	if set == nil {
		return ""
	}
	in, ok := set.Flag(key)
	if !ok {
		return ""
	}
	return flags.VariantsDigest(in)
}

// staleFlagChanges ends, in the transaction that makes release current in
// env, the pending change requests of flags whose variants the release
// changed (or that it no longer has): they are stale, each with its audit
// entry and event.
func (a *App) staleFlagChanges(ctx context.Context, t *txn, env, release string) error {
	pending, err := t.ListFlagChanges(ctx, domain.FlagChangeFilter{Environment: env, State: domain.FlagChangePending})
	if err != nil || len(pending) == 0 {
		return err
	}
	set, err := releaseFlags(ctx, t, release, env)
	if err != nil {
		return err
	}
	for _, fc := range pending {
		v := variantsIn(set, fc.Key)
		if v == fc.Variants {
			continue
		}
		fc.State, fc.UpdatedAt, fc.Reason = domain.FlagChangeStale, t.at, "release "+release+" changed the flag's variants"
		if v == "" {
			fc.Reason = "release " + release + " has no flag " + fc.Key
		}
		if err := t.UpdateFlagChange(ctx, fc); err != nil {
			return err
		}
		if err := a.recordFlagChange(t, fc, auth.System("envplane").Actor(), domain.ActionFlagChangeStale, nil); err != nil {
			return err
		}
	}
	return nil
}

// flagAct runs one action on change request id of env by p: authorized as
// action on env, the request re-read in the transaction (so that of two
// concurrent last approvals exactly one applies: writers are serialized),
// checked still open and still about the flag it was asked for (else it
// ends superseded or stale, committed, and the action answers 409).
func (a *App) flagAct(ctx context.Context, p *auth.Principal, action auth.Action, env, id string,
	change func(t *txn, fc *domain.FlagChange, variants string) error) (domain.FlagChange, error) {
	if err := p.Can(action, env); err != nil {
		return domain.FlagChange{}, err
	}
	cur, err := a.GetFlagChange(ctx, p, env, id)
	if err != nil {
		return cur, err
	}
	rel, variants, err := a.flagNow(ctx, cur)
	if err != nil {
		return cur, err
	}
	var fc domain.FlagChange
	var ended error
	err = a.write(ctx, func(ctx context.Context, t *txn) error {
		if fc, err = t.GetFlagChange(ctx, id); err != nil {
			return err
		}
		if !fc.State.Open() {
			return errs.E(errs.Conflict, "flag change request %s is %s: it can no longer change", fc.ID, fc.State)
		}
		e, err := t.GetEnvironment(ctx, env)
		if err != nil {
			return err
		}
		if e.Release != rel {
			return errs.E(errs.Conflict, "environment %q changed its release meanwhile: try again", env)
		}
		before, err := overrideIn(ctx, t, env, fc.Key)
		if err != nil {
			return err
		}
		if flagDigest(variants, before) != fc.Digest {
			state, act := domain.FlagChangeSuperseded, domain.ActionFlagChangeSupersede
			fc.Reason = "the flag's override changed after the request"
			if variants != fc.Variants {
				state, act = domain.FlagChangeStale, domain.ActionFlagChangeStale
				fc.Reason = "release " + e.Release + " changed the flag's variants"
				if variants == "" {
					fc.Reason = "release " + e.Release + " has no flag " + fc.Key
				}
			}
			fc.State, fc.UpdatedAt = state, t.at
			ended = errs.E(errs.Conflict, "flag change request %s is %s: %s, so it no longer applies to what was asked", fc.ID, state, fc.Reason)
			if err := t.UpdateFlagChange(ctx, fc); err != nil {
				return err
			}
			return a.recordFlagChange(t, fc, auth.System("envplane").Actor(), act, nil)
		}
		if err := change(t, &fc, variants); err != nil {
			return err
		}
		return t.UpdateFlagChange(ctx, fc)
	})
	if err != nil {
		return domain.FlagChange{}, err
	}
	return fc, ended
}

// ApproveFlagChange counts p's approval of change request id of env and,
// when it is the last one needed, applies the change in the same
// transaction and supersedes the other pending requests for the flag.
func (a *App) ApproveFlagChange(ctx context.Context, p *auth.Principal, env, id string) (domain.FlagChange, error) {
	return a.flagAct(ctx, p, auth.ApprovePromotion, env, id, func(t *txn, fc *domain.FlagChange, variants string) error {
		given, err := promote.CountApproval(fc.Gate, fc.Approvals, "change request", fc.RequesterToken, fc.Digest, principalOf(p), t.at)
		if err != nil {
			return err
		}
		fc.Approvals, fc.UpdatedAt = given, t.at
		if err := a.recordFlagChange(t, *fc, p.Actor(), domain.ActionFlagChangeApprove,
			map[string]any{"environment": fc.Environment, "flag": fc.Key, "groups": p.Groups, "digest": fc.Digest}); err != nil {
			return err
		}
		if promote.Counted(fc.Approvals, fc.Digest) < fc.Gate.Required {
			return nil
		}
		return a.applyFlagChange(t, fc, variants, p.Actor())
	})
}

// applyFlagChange stores fc's override and marks it applied.
func (a *App) applyFlagChange(t *txn, fc *domain.FlagChange, variants, actor string) error {
	o := domain.FlagOverride{Environment: fc.Environment, Key: fc.Key, State: fc.Override.State, DefaultVariant: fc.Override.DefaultVariant,
		Targeting: fc.Override.Targeting, VariantsDigest: variants, UpdatedAt: t.at, UpdatedBy: fc.RequestedBy}
	if err := t.PutFlagOverride(t.ctx, o); err != nil {
		return err
	}
	fc.State, fc.UpdatedAt = domain.FlagChangeApplied, t.at
	details := changeDetails(*fc)
	details["requestedBy"] = fc.RequestedBy
	if err := a.recordFlagChange(t, *fc, actor, domain.ActionFlagChangeApply, details); err != nil {
		return err
	}
	t.notify(domain.Event{Kind: domain.EventFlag, Environment: fc.Environment, ID: fc.Key})
	others, err := t.ListFlagChanges(t.ctx, domain.FlagChangeFilter{Environment: fc.Environment, Key: fc.Key, State: domain.FlagChangePending})
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID == fc.ID {
			continue
		}
		o.State, o.Reason, o.UpdatedAt = domain.FlagChangeSuperseded, "superseded by change request "+fc.ID, t.at
		if err := t.UpdateFlagChange(t.ctx, o); err != nil {
			return err
		}
		if err := a.recordFlagChange(t, o, actor, domain.ActionFlagChangeSupersede, map[string]any{"environment": o.Environment, "flag": o.Key, "by": fc.ID}); err != nil {
			return err
		}
	}
	return nil
}

// RejectFlagChange ends change request id of env: an approver said no.
func (a *App) RejectFlagChange(ctx context.Context, p *auth.Principal, env, id, reason string) (domain.FlagChange, error) {
	if len(reason) > 1000 {
		return domain.FlagChange{}, errs.Field("reason", "at most 1000 bytes")
	}
	return a.flagAct(ctx, p, auth.ApprovePromotion, env, id, func(t *txn, fc *domain.FlagChange, _ string) error {
		fc.State, fc.UpdatedAt, fc.Reason = domain.FlagChangeRejected, t.at, "rejected by "+p.Actor()
		if reason != "" {
			fc.Reason += ": " + reason
		}
		return a.recordFlagChange(t, *fc, p.Actor(), domain.ActionFlagChangeReject, nil)
	})
}

// CancelFlagChange withdraws change request id of env: its requester's,
// or any for an admin.
func (a *App) CancelFlagChange(ctx context.Context, p *auth.Principal, env, id string) (domain.FlagChange, error) {
	return a.flagAct(ctx, p, auth.WriteFlags, env, id, func(t *txn, fc *domain.FlagChange, _ string) error {
		if err := promote.MayCancel(principalOf(p), fc.RequesterToken, "change request "+fc.ID); err != nil {
			return err
		}
		fc.State, fc.UpdatedAt, fc.Reason = domain.FlagChangeCancelled, t.at, "cancelled by "+p.Actor()
		return a.recordFlagChange(t, *fc, p.Actor(), domain.ActionFlagChangeCancel, nil)
	})
}
