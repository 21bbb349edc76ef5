package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// Flag change requests on the flags page of a restricted environment:
// there the override forms open change requests (the server's
// OverrideFlag does), and the page lists the pending ones with approve,
// reject and cancel buttons for those who may. The template is
// templates/changes.html ("flag-changes").

// changesView is the change request section of a flags page; nil for an
// environment that is not restricted.
type changesView struct {
	Env     string
	CSRF    string
	Pending []flagChangeView
	// Recent are the last requests that ended, newest first.
	Recent []flagChangeView
}

type flagChangeView struct {
	domain.FlagChange
	Summary               string
	Given                 int
	CanApprove, CanCancel bool
}

// recentChanges is how many ended requests the page shows.
const recentChanges = 10

// flagChanges is the change request section of env's flags page for p.
func (u *UI) flagChanges(q *req, env string) *changesView {
	i := slices.IndexFunc(u.src.Environments(), func(e domain.Environment) bool { return e.Name == env })
	if i < 0 || u.src.Environments()[i].Protection != domain.ProtectionRestricted {
		return nil
	}
	v := &changesView{Env: env, CSRF: q.sess.CSRF}
	all, err := u.app.ListFlagChanges(q.ctx(), q.p, domain.FlagChangeFilter{Environment: env, Limit: 200})
	if err != nil {
		return v // a viewer without promotions.read sees the note only
	}
	mayApprove := q.p.Can(auth.ApprovePromotion, env) == nil
	mayWrite := q.p.Can(auth.WriteFlags, env) == nil
	for _, fc := range all {
		cv := flagChangeView{FlagChange: fc, Summary: changeSummary(fc.Change), Given: len(fc.Approvals)}
		if fc.State.Open() {
			self := q.p.TokenID != "" && q.p.TokenID == fc.RequesterToken
			approved := slices.ContainsFunc(fc.Approvals, func(a domain.Approval) bool { return a.TokenID == q.p.TokenID })
			cv.CanApprove = mayApprove && !approved && (!self || fc.Gate.AllowSelfApproval)
			cv.CanCancel = mayWrite && (self || q.p.Role == auth.Admin)
			v.Pending = append(v.Pending, cv)
		} else if len(v.Recent) < recentChanges {
			v.Recent = append(v.Recent, cv)
		}
	}
	return v
}

// changeSummary says what a change sets, in one line.
func changeSummary(c domain.FlagFields) string {
	var parts []string
	if c.State != nil {
		parts = append(parts, "state "+*c.State)
	}
	if c.DefaultVariant != nil {
		parts = append(parts, "default variant "+*c.DefaultVariant)
	}
	if c.Targeting != nil {
		parts = append(parts, "targeting "+string(c.Targeting))
	}
	return strings.Join(parts, ", ")
}

// flagChangeAction is POST /environments/{env}/flags/changes/{id}/{action}
// (approve, reject with an optional reason, cancel): the App's use case,
// then back to the flags page.
func (u *UI) flagChangeAction(q *req) error {
	env, id := q.r.PathValue("env"), q.r.PathValue("id")
	var err error
	switch q.r.PathValue("action") {
	case "approve":
		_, err = u.app.ApproveFlagChange(q.ctx(), q.p, env, id)
	case "reject":
		_, err = u.app.RejectFlagChange(q.ctx(), q.p, env, id, q.r.PostFormValue("reason"))
	case "cancel":
		_, err = u.app.CancelFlagChange(q.ctx(), q.p, env, id)
	default:
		return errs.E(errs.NotFound, "no such change request action")
	}
	if err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/environments/"+url.PathEscape(env)+"/flags#changes", http.StatusSeeOther)
	return nil
}
