package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

// Targeting on the flags page: an editor replaces a flag's targeting in
// one environment with a JSONLogic rule typed in a textarea (checked
// against the flag by the server as the API's PATCH checks it, problems
// shown at the field), or removes the flag's override altogether, which
// gives the flag back its release's definition.

// maxTargeting bounds the rule a form may carry.
const maxTargeting = 16 << 10

// targetingSource overrides a flag's targeting (*server.Server
// implements it).
type targetingSource interface {
	OverrideFlagTargeting(ctx context.Context, p *auth.Principal, env, key string, targeting json.RawMessage) error
}

// targetingEdit is a refused targeting form, shown again with its text
// and problems at the flag it was for.
type targetingEdit struct {
	Key, Text string
	Problems  []string
}

// flagTargeting is POST /environments/{env}/flags/{key}/targeting
// (targeting=JSON).
func (u *UI) flagTargeting(q *req) error {
	env, key := q.r.PathValue("env"), q.r.PathValue("key")
	if err := q.p.Can(auth.WriteFlags, env); err != nil {
		return err
	}
	ts, ok := u.src.(targetingSource)
	if !ok {
		return errs.E(errs.Internal, "this server cannot override targeting")
	}
	text := strings.TrimSpace(q.r.PostForm.Get("targeting"))
	var problems []string
	switch {
	case text == "":
		problems = []string{`give a JSONLogic rule, or {} for no targeting (every context gets the default variant); "Remove override" goes back to the release's targeting`}
	case len(text) > maxTargeting:
		problems = []string{"at most 16 KiB"}
	case !json.Valid([]byte(text)):
		var v any
		err := json.Unmarshal([]byte(text), &v)
		problems = []string{"not JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
	default:
		err := ts.OverrideFlagTargeting(q.ctx(), q.p, env, key, json.RawMessage(text))
		if err == nil {
			http.Redirect(q.w, q.r, "/environments/"+url.PathEscape(env)+"/flags#flag-"+url.PathEscape(key), http.StatusSeeOther)
			return nil
		}
		if !errs.Is(err, errs.Unprocessable) && !errs.Is(err, errs.Invalid) {
			return err
		}
		_, msg, fields := errs.Public(err)
		for _, f := range fields {
			problems = append(problems, f.Message)
		}
		if len(problems) == 0 {
			problems = []string{msg}
		}
	}
	d, err := u.flagsData(q)
	if err != nil {
		return err
	}
	d.Edit = &targetingEdit{Key: key, Text: text, Problems: problems}
	d.Live = nil // a live reload would drop the text and its problems
	u.render(q.w, http.StatusUnprocessableEntity, "flags", d)
	return nil
}

// flagClear is POST /environments/{env}/flags/{key}/clear: the flag's
// override removed, through the App (authorized, audited).
func (u *UI) flagClear(q *req) error {
	env, key := q.r.PathValue("env"), q.r.PathValue("key")
	if err := u.app.ClearFlagOverride(q.ctx(), q.p, env, key); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/environments/"+url.PathEscape(env)+"/flags#flag-"+url.PathEscape(key), http.StatusSeeOther)
	return nil
}

// TargetingText is what a flag's targeting textarea starts with: the
// posted text of a refused form, else the override's rule, else the
// release's.
func (d *flagsData) TargetingText(f flagView) string {
	if d.Edit != nil && d.Edit.Key == f.Key {
		return d.Edit.Text
	}
	if f.Override != nil && len(f.Override.Targeting) > 0 {
		return string(f.Override.Targeting)
	}
	if json.Valid([]byte(f.Targeting)) { // the release's rule, as JSON
		return f.Targeting
	}
	return ""
}

// TargetingProblems are the problems of a refused targeting form of key.
func (d *flagsData) TargetingProblems(key string) []string {
	if d.Edit != nil && d.Edit.Key == key {
		return d.Edit.Problems
	}
	return nil
}
