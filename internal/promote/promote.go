// Package promote is envplane's promotion state machine and gate
// evaluation, pure: no I/O, no clock of its own. A promotion (a
// domain.Promotion) moves checking → awaiting-approval → approved → applied,
// or ends failed, rejected, cancelled or superseded. The gates it passes are
// those of the target's promotion block when it was opened (the definition
// of the release current in the target), never those of the release being
// promoted: a release cannot relax its own gates. internal/app runs the
// transitions in store transactions; this package only decides them.
package promote

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// Open builds a new promotion in state checking, its checks, checklist and
// approvals laid out from gates. rollback: the release was current in the
// target before (it need not be current in gates.From).
func Open(id string, rel domain.Release, env string, gates domain.PromotionGates, requestedBy, requesterToken string, rollback, emergency bool, now time.Time) domain.Promotion {
	p := domain.Promotion{
		ID: id, Release: rel.ID, Digest: rel.Digest, Environment: env, From: gates.From,
		State: domain.PromotionChecking, RequestedBy: requestedBy, RequesterToken: requesterToken,
		Rollback: rollback, Emergency: emergency, Gates: gates, CreatedAt: now, UpdatedAt: now,
		Checks: []domain.CheckStatus{}, Checklist: []domain.ChecklistItem{}, Approvals: []domain.Approval{},
	}
	for _, c := range gates.Checks {
		p.Checks = append(p.Checks, domain.CheckStatus{Name: c.Name, Type: c.Type, Status: domain.CheckPending})
	}
	for _, it := range gates.Checklist {
		p.Checklist = append(p.Checklist, domain.ChecklistItem{Item: it})
	}
	return p
}

// Required is the number of approvals p needs (0 without an approvals gate).
func Required(p domain.Promotion) int {
	if p.Gates.Approvals == nil {
		return 0
	}
	return p.Gates.Approvals.Required
}

// counted is the approvals that count: tied to the promoted digest.
func counted(p domain.Promotion) int { return Counted(p.Approvals, p.Digest) }

// Counted is the approvals of given that count: those tied to digest.
func Counted(given []domain.Approval, digest string) int {
	n := 0
	for _, a := range given {
		if a.Digest == digest {
			n++
		}
	}
	return n
}

// Step is what Advance decided.
type Step struct {
	Changed bool // the state changed
	// Apply: every gate passed; the caller applies the promotion (and marks
	// it applied) in the same transaction.
	Apply bool
	// Freeze is the freeze keeping an approved promotion waiting, if any.
	Freeze *Frozen
}

// Advance moves an open promotion as far as its gates allow at now. It
// never applies by itself: Step.Apply says the caller should.
func Advance(p *domain.Promotion, now time.Time) (Step, error) {
	var st Step
	for range 4 { // at most checking → awaiting → approved → apply
		if !p.State.Open() {
			return st, nil
		}
		switch p.State {
		case domain.PromotionChecking:
			done := true
			for _, c := range p.Checks {
				switch c.Status {
				case domain.CheckFailed:
					msg := "check " + c.Name + " failed"
					if c.Message != "" {
						msg += ": " + c.Message
					}
					st.Changed = true
					p.State, p.Reason, p.UpdatedAt = domain.PromotionFailed, "gate checks: "+msg, now
					return st, nil
				case domain.CheckPassed:
				default:
					done = false
				}
			}
			if !done {
				return st, nil
			}
			p.State, p.UpdatedAt, st.Changed = domain.PromotionAwaitingApproval, now, true
		case domain.PromotionAwaitingApproval:
			for _, it := range p.Checklist {
				if !it.Done {
					return st, nil
				}
			}
			if counted(*p) < Required(*p) {
				return st, nil
			}
			p.State, p.ApprovedAt, p.UpdatedAt, st.Changed = domain.PromotionApproved, now, now, true
			if p.Gates.WaitTimer > 0 && !p.Emergency {
				p.WaitUntil = now.Add(p.Gates.WaitTimer)
			}
		case domain.PromotionApproved:
			if now.Before(p.WaitUntil) {
				return st, nil
			}
			f, err := FrozenAt(p.Gates.Freeze, now)
			if err != nil {
				return st, err
			}
			if f != nil {
				st.Freeze = f
				return st, nil
			}
			st.Apply = true
			return st, nil
		}
	}
	return st, nil
}

// Principal is who acts on a promotion, as far as the gates care.
type Principal struct {
	TokenID string
	Actor   string
	Groups  []string
	Admin   bool
}

func gateErr(kind errs.Kind, gate, format string, args ...any) error {
	return errs.E(kind, "gate %s: %s", gate, fmt.Sprintf(format, args...))
}

// needOpen refuses acting on a promotion that ended.
func needOpen(p domain.Promotion, what string) error {
	if !p.State.Open() {
		return errs.E(errs.Conflict, "promotion %s is %s: it can no longer be %s", p.ID, p.State, what)
	}
	return nil
}

// Approve counts who's approval, or says which gate refuses it and why.
func Approve(p *domain.Promotion, who Principal, now time.Time) error {
	if err := needOpen(*p, "approved"); err != nil {
		return err
	}
	if p.State == domain.PromotionApproved {
		return errs.E(errs.Conflict, "promotion %s is already approved (waiting for its wait timer or a freeze)", p.ID)
	}
	a := p.Gates.Approvals
	if a == nil || a.Required == 0 {
		return gateErr(errs.Conflict, "approvals", "environment %s's promotion block asks for no approvals", p.Environment)
	}
	given, err := CountApproval(*a, p.Approvals, "promotion", p.RequesterToken, p.Digest, who, now)
	if err != nil {
		return err
	}
	p.Approvals, p.UpdatedAt = given, now
	return nil
}

// CountApproval is the approval gate shared by promotions and flag change
// requests: who's approval of a request (what names it: "promotion",
// "change request") is added to given, tied to digest, when who is in one
// of gate's groups, is not the requester unless self-approval is allowed
// and has not approved already; otherwise the error says which rule
// refused it (Forbidden, or Conflict for a second approval). Whether who
// has an approving role is the caller's (auth) check.
func CountApproval(gate domain.GateApprovals, given []domain.Approval, what, requesterToken, digest string, who Principal, now time.Time) ([]domain.Approval, error) {
	if !gate.AllowSelfApproval && who.TokenID != "" && who.TokenID == requesterToken {
		return given, gateErr(errs.Forbidden, "approvals", "the requester may not approve their own %s (allowSelfApproval is false)", what)
	}
	if len(gate.Groups) > 0 && !slices.ContainsFunc(who.Groups, func(g string) bool { return slices.Contains(gate.Groups, g) }) {
		return given, gateErr(errs.Forbidden, "approvals", "approvals count only from members of %s; this token's groups are [%s]",
			strings.Join(gate.Groups, ", "), strings.Join(who.Groups, ", "))
	}
	for _, ap := range given {
		if (who.TokenID != "" && ap.TokenID == who.TokenID) || (who.TokenID == "" && ap.By == who.Actor) {
			return given, gateErr(errs.Conflict, "approvals", "%s already approved this %s", who.Actor, what)
		}
	}
	return append(slices.Clip(given), domain.Approval{By: who.Actor, TokenID: who.TokenID, At: now, Digest: digest}), nil
}

// Reject ends an open promotion: an approver said no.
func Reject(p *domain.Promotion, who Principal, reason string, now time.Time) error {
	if err := needOpen(*p, "rejected"); err != nil {
		return err
	}
	p.State, p.UpdatedAt = domain.PromotionRejected, now
	p.Reason = "rejected by " + who.Actor
	if reason != "" {
		p.Reason += ": " + reason
	}
	return nil
}

// Cancel ends an open promotion: its requester (or an admin) withdrew it.
func Cancel(p *domain.Promotion, who Principal, now time.Time) error {
	if err := needOpen(*p, "cancelled"); err != nil {
		return err
	}
	if err := MayCancel(who, p.RequesterToken, "promotion "+p.ID); err != nil {
		return err
	}
	p.State, p.Reason, p.UpdatedAt = domain.PromotionCancelled, "cancelled by "+who.Actor, now
	return nil
}

// MayCancel refuses cancelling what (a request made with requesterToken)
// to anyone but its requester and admins.
func MayCancel(who Principal, requesterToken, what string) error {
	if !who.Admin && (who.TokenID == "" || who.TokenID != requesterToken) {
		return errs.E(errs.Forbidden, "only the requester of %s or an admin may cancel it", what)
	}
	return nil
}

// Report records an external check's result. Built-in and HTTP checks
// are the server's own to run and cannot be reported.
func Report(p *domain.Promotion, name, status, url, message string, who Principal, now time.Time) error {
	if status != domain.CheckPassed && status != domain.CheckFailed {
		return &errs.Error{Kind: errs.Invalid, Message: "a check's status is passed or failed",
			Fields: []errs.FieldError{{Field: "status", Message: fmt.Sprintf("%q: use passed or failed", status)}}}
	}
	if err := needOpen(*p, "checked"); err != nil {
		return err
	}
	i := slices.IndexFunc(p.Checks, func(c domain.CheckStatus) bool { return c.Name == name })
	if i < 0 {
		names := make([]string, len(p.Checks))
		for j, c := range p.Checks {
			names[j] = c.Name
		}
		return errs.E(errs.NotFound, "gate checks: promotion %s has no check %q (its checks: %s)", p.ID, name, strings.Join(names, ", "))
	}
	c := &p.Checks[i]
	if c.Type != domain.CheckExternal {
		return gateErr(errs.Conflict, "checks", "check %q is of type %s: the server runs it, CI cannot report it", name, c.Type)
	}
	if p.State != domain.PromotionChecking {
		return gateErr(errs.Conflict, "checks", "promotion %s is %s: its checks are decided", p.ID, p.State)
	}
	c.Status, c.URL, c.Message, c.By = status, url, message, who.Actor
	p.UpdatedAt = now
	return nil
}

// Tick marks checklist item index done.
func Tick(p *domain.Promotion, index int, who Principal, now time.Time) error {
	if err := needOpen(*p, "ticked"); err != nil {
		return err
	}
	if index < 0 || index >= len(p.Checklist) {
		return errs.E(errs.NotFound, "gate checklist: promotion %s has %d checklist items (0 to %d)", p.ID, len(p.Checklist), len(p.Checklist)-1)
	}
	it := &p.Checklist[index]
	if it.Done {
		return gateErr(errs.Conflict, "checklist", "item %d (%q) was ticked by %s", index, it.Item, it.By)
	}
	it.Done, it.By, p.UpdatedAt = true, who.Actor, now
	return nil
}

// Supersede ends an open promotion because another one was applied to its
// target.
func Supersede(p *domain.Promotion, by string, now time.Time) {
	p.State, p.Reason, p.UpdatedAt = domain.PromotionSuperseded, "superseded by promotion "+by, now
}

// Applied marks p applied; previous is the target's release before.
func Applied(p *domain.Promotion, previous string, now time.Time) {
	p.State, p.Previous, p.UpdatedAt = domain.PromotionApplied, previous, now
}

// Fail ends p as failed with reason.
func Fail(p *domain.Promotion, reason string, now time.Time) {
	p.State, p.Reason, p.UpdatedAt = domain.PromotionFailed, reason, now
}
