package web

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/report"
	"github.com/envplane/envplane/internal/tree"
)

// visible lists the environments the principal may see, in promotion order.
func (u *UI) visible(p *auth.Principal) []domain.Environment {
	all := u.src.Environments()
	out := all[:0:0]
	for _, e := range all {
		if p.Can(auth.ReadEnvironments, e.Name) == nil {
			out = append(out, e)
		}
	}
	return out
}

func names(envs []domain.Environment) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Name
	}
	return out
}

// releaseCache keeps release metadata (never files): releases never change.
type releaseCache struct {
	mu sync.Mutex
	m  map[string]domain.Release
}

func (c *releaseCache) init() { c.m = map[string]domain.Release{} }

// releaseOf is release id's metadata, when p may read releases.
func (u *UI) releaseOf(q *req, id string) *domain.Release {
	if id == "" || q.p.Can(auth.ReadReleases, "") != nil {
		return nil
	}
	u.release.mu.Lock()
	rel, ok := u.release.m[id]
	u.release.mu.Unlock()
	if !ok {
		r, _, err := u.app.GetRelease(q.ctx(), q.p, id)
		if err != nil {
			return nil
		}
		r.Files = nil
		rel = r
		u.release.mu.Lock()
		u.release.m[id] = rel
		u.release.mu.Unlock()
	}
	return &rel
}

type label struct{ Key, Value string }

type envColumn struct {
	domain.Environment
	Release   *domain.Release
	Labels    []label
	Promotion *domain.Promotion
	From      string // the previous stage
	Drift     int    // keys that differ from From; -1: unknown
	// Flags is how many flags the environment has, -1 when the user may
	// not read them; Overridden the keys changed from their release's
	// definition by an override.
	Flags      int
	Overridden []string
	Secrets    bool // the user may list the environment's secrets
}

type overviewData struct {
	base
	Envs []envColumn
}

// previous is the stage env is promoted from: its promotion block's from,
// else the environment before it.
func previous(envs []domain.Environment, i int) string {
	if g := envs[i].Gates; g != nil && g.From != "" {
		return g.From
	}
	if i > 0 {
		return envs[i-1].Name
	}
	return ""
}

func (u *UI) overview(q *req) error {
	envs := u.visible(q.p)
	d := overviewData{base: u.base(q, "Overview")}
	d.Nav, d.Live = "overview", names(envs)
	var open []domain.Promotion
	if q.p.Can(auth.ReadPromotions, "") == nil {
		var err error
		if open, err = u.app.ListPromotions(q.ctx(), q.p, domain.PromotionFilter{OpenOnly: true}); err != nil {
			return err
		}
	}
	for i, e := range envs {
		c := envColumn{Environment: e, From: previous(envs, i), Drift: -1, Release: u.releaseOf(q, e.Release),
			Flags: -1, Secrets: q.p.Can(auth.ReadSecrets, e.Name) == nil}
		if list, ok := u.flagList(q.p, e.Name); ok {
			c.Flags = len(list.Flags)
			for _, f := range list.Flags {
				if f.Override != nil {
					c.Overridden = append(c.Overridden, f.Key)
				}
			}
		}
		if c.Release != nil {
			for k, v := range c.Release.Labels {
				c.Labels = append(c.Labels, label{k, v})
			}
			sort.Slice(c.Labels, func(i, j int) bool { return c.Labels[i].Key < c.Labels[j].Key })
		}
		for j := range open {
			if open[j].Environment == e.Name {
				c.Promotion = &open[j]
				break
			}
		}
		if c.From != "" {
			if changes, err := u.changes(q.p, c.From, e.Name, "", false); err == nil {
				c.Drift = len(changes)
			}
		}
		d.Envs = append(d.Envs, c)
	}
	u.render(q.w, http.StatusOK, "overview", d)
	return nil
}

// display is a value's JSON as a person reads it: strings unquoted.
func display(raw string) string {
	if strings.HasPrefix(raw, `"`) {
		var s string
		if json.Unmarshal([]byte(raw), &s) == nil {
			return s
		}
	}
	return raw
}

// sourceText says where a value came from, for the matrix's hover text.
func sourceText(v *tree.Value) string {
	s := v.Src.Kind.String() + " " + v.Src.String()
	switch v.Src.Kind {
	case tree.SourceDefault:
		s = "schema default " + v.Src.String()
	case tree.SourceSecret:
		s = v.Src.String()
	case tree.SourceEnv:
		s = "variable " + v.Src.Name
	}
	if v.Via != nil {
		s += " via " + v.Via.String()
	}
	if n := len(v.Overridden); n > 0 {
		s += " (overrides " + strconv.Itoa(n) + ")"
	}
	return s
}

type cell struct {
	Env     string
	Present bool
	Value   string
	Source  string
	Hidden  bool
}

type row struct {
	Key     string
	Cells   []cell
	Differs bool
}

type matrixData struct {
	base
	Envs    []string
	Errors  map[string]string
	Rows    []row
	Key     string
	Diff    bool
	Service string
	Total   int
	// RowsHTML is Rows as the table body (matrix_html.go).
	RowsHTML template.HTML
}

func (u *UI) matrix(q *req) error {
	qv := q.r.URL.Query()
	d := matrixData{base: u.base(q, "Config matrix"), Key: qv.Get("key"), Diff: qv.Get("diff") == "1", Service: qv.Get("service"), Errors: map[string]string{}}
	d.Nav = "matrix"
	type side struct {
		leaves map[string]*tree.Value
		opts   render.Options
		ok     bool // resolved: environments without a config take no part in differences
	}
	var sides []side
	var order []string
	seen := map[string]bool{}
	for _, e := range u.visible(q.p) {
		if q.p.Can(auth.ReadConfig, e.Name) != nil {
			continue
		}
		d.Envs = append(d.Envs, e.Name)
		t, o, err := u.src.Resolved(e.Name, d.Service)
		s := side{leaves: map[string]*tree.Value{}, opts: o}
		if err != nil {
			_, msg, _ := errs.Public(err)
			d.Errors[e.Name] = msg
		} else {
			s.ok = true
			tree.Walk(t, func(p string, v *tree.Value) {
				if p == "" || (v.Kind == tree.Map && len(v.Fields) == 0) {
					return
				}
				s.leaves[p] = v
				if !seen[p] {
					seen[p] = true
					order = append(order, p)
				}
			})
		}
		sides = append(sides, s)
	}
	d.Live = d.Envs
	filter := strings.ToLower(d.Key)
	for _, k := range order {
		if filter != "" && !strings.Contains(strings.ToLower(k), filter) {
			continue
		}
		d.Total++
		r := row{Key: k, Cells: make([]cell, len(sides))}
		var first *tree.Value
		compared := false
		for i, s := range sides {
			v := s.leaves[k]
			c := cell{Env: d.Envs[i]}
			if v != nil {
				c.Present = true
				c.Hidden = s.opts.Hidden(k, v)
				c.Value = display(render.JSON(v, k, s.opts))
				c.Source = sourceText(v)
			}
			switch {
			case !s.ok:
			case !compared:
				first, compared = v, true
			case (first == nil) != (v == nil) || (v != nil && !tree.Equal(first, v)):
				r.Differs = true
			}
			r.Cells[i] = c
		}
		if d.Diff && !r.Differs {
			continue
		}
		d.Rows = append(d.Rows, r)
	}
	d.RowsHTML = d.rowsHTML()
	u.render(q.w, http.StatusOK, "matrix", d)
	return nil
}

type explainData struct {
	base
	Env, Key, Service string
	Envs              []string
	X                 *report.Explanation
	Value             string
	CanReveal         bool
	Revealed          bool
}

// explain shows a key's value and the whole chain it overrode. A POST with
// reveal=1 (allowed users only) shows hidden values, audited first.
func (u *UI) explain(q *req) error {
	qv := q.r.URL.Query()
	if q.r.Method == http.MethodPost {
		qv = q.r.PostForm
	}
	d := explainData{base: u.base(q, "Explain"), Env: qv.Get("env"), Key: qv.Get("key"), Service: qv.Get("service")}
	d.Nav = "matrix"
	if d.Env == "" || d.Key == "" {
		return errs.E(errs.Invalid, "explain needs an environment (env) and a key")
	}
	if err := q.p.Can(auth.ReadConfig, d.Env); err != nil {
		return err
	}
	d.Live = []string{d.Env}
	for _, e := range u.visible(q.p) {
		if q.p.Can(auth.ReadConfig, e.Name) == nil {
			d.Envs = append(d.Envs, e.Name)
		}
	}
	t, o, err := u.src.Resolved(d.Env, d.Service)
	if err != nil {
		return err
	}
	path := tree.SplitKey(d.Key)
	d.Key = strings.Join(path, ".")
	v := t.Lookup(path)
	if v == nil {
		return errs.E(errs.NotFound, "key %q is not set in %s", d.Key, d.Env)
	}
	x := report.Explain(v, d.Key, o)
	d.CanReveal = q.p.Can(auth.RevealConfig, d.Env) == nil
	if q.r.Method == http.MethodPost && qv.Get("reveal") == "1" {
		if !d.CanReveal {
			return errs.E(errs.Forbidden, "role %s may not reveal values in %s", q.p.Role, d.Env)
		}
		ro := o
		ro.Reveal = true
		shown := report.Explain(v, d.Key, ro)
		if a, b := mustJSON(x), mustJSON(shown); a != b {
			if err := u.app.RecordReveal(q.ctx(), q.p, app.Reveal{Environment: d.Env, Via: "web explain", Service: d.Service, Keys: []string{d.Key}}); err != nil {
				return err
			}
			d.Revealed = true
			d.Live = nil // a live reload would fetch the redacted page
		}
		x = shown
	}
	d.X, d.Value = &x, display(string(x.Value))
	u.render(q.w, http.StatusOK, "explain", d)
	return nil
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

type promotionView struct {
	domain.Promotion
	CanApprove, CanAct bool
	Required           int
	Groups             []string
}

type promotionsData struct {
	base
	Open, Recent []promotionView
}

func (u *UI) promotions(q *req) error {
	d := promotionsData{base: u.base(q, "Promotions")}
	d.Nav, d.Live = "promotions", names(u.visible(q.p))
	all, err := u.app.ListPromotions(q.ctx(), q.p, domain.PromotionFilter{Limit: 50})
	if err != nil {
		return err
	}
	for _, pr := range all {
		v := promotionView{Promotion: pr,
			CanApprove: q.p.Can(auth.ApprovePromotion, pr.Environment) == nil,
			CanAct:     q.p.Can(auth.Promote, pr.Environment) == nil}
		if a := pr.Gates.Approvals; a != nil {
			v.Required, v.Groups = a.Required, a.Groups
		}
		if pr.State.Open() {
			d.Open = append(d.Open, v)
		} else if len(d.Recent) < 20 {
			d.Recent = append(d.Recent, v)
		}
	}
	u.render(q.w, http.StatusOK, "promotions", d)
	return nil
}

// promotionAction approves, rejects or cancels, then shows the list.
func (u *UI) promotionAction(q *req) error {
	id := q.r.PathValue("id")
	var err error
	switch q.r.PathValue("action") {
	case "approve":
		_, err = u.app.Approve(q.ctx(), q.p, id)
	case "reject":
		_, err = u.app.Reject(q.ctx(), q.p, id, q.r.PostFormValue("reason"))
	case "cancel":
		_, err = u.app.Cancel(q.ctx(), q.p, id)
	default:
		return errs.E(errs.NotFound, "no such promotion action")
	}
	if err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/promotions#"+id, http.StatusSeeOther)
	return nil
}

func (u *UI) tick(q *req) error {
	id := q.r.PathValue("id")
	i, err := strconv.Atoi(q.r.PathValue("index"))
	if err != nil {
		return errs.Field("index", "a checklist item's number")
	}
	if _, err := u.app.TickChecklist(q.ctx(), q.p, id, i); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/promotions#"+id, http.StatusSeeOther)
	return nil
}

type auditRow struct {
	domain.AuditEntry
	DetailsText string
}

type auditData struct {
	base
	Verify          audit.Result
	Entries         []auditRow
	Older, Newer    int64
	HasOlder, Paged bool
	// The filters (query parameters action, actor, target, environment)
	// and, when any is set, the range of entries they were applied to.
	Filter                auditFilter
	Filtered              bool
	Scanned               int
	Actions               []string
	OlderHref, NewestHref string
}

type auditFilter struct{ Action, Actor, Target, Environment string }

func (f auditFilter) set() bool { return f != auditFilter{} }

// match: action exactly or as a prefix ("promotion" matches
// promotion.approve), actor and target containing the text (any case),
// environment among those the entry is about.
func (f auditFilter) match(e domain.AuditEntry) bool {
	if f.Action != "" && e.Action != f.Action && !strings.HasPrefix(e.Action, f.Action+".") {
		return false
	}
	if f.Actor != "" && !strings.Contains(strings.ToLower(e.Actor), strings.ToLower(f.Actor)) {
		return false
	}
	if f.Target != "" && !strings.Contains(strings.ToLower(e.Target), strings.ToLower(f.Target)) {
		return false
	}
	return f.Environment == "" || slices.Contains(entryEnvironments(e), f.Environment)
}

func (f auditFilter) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"action": f.Action, "actor": f.Actor, "target": f.Target, "environment": f.Environment} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// entryEnvironments names the environments an entry is about, as the App
// scopes audit listings: its details' environment and environments, or
// the target of a set-release.
func entryEnvironments(e domain.AuditEntry) []string {
	var d struct {
		Environment  string   `json:"environment"`
		Environments []string `json:"environments"`
	}
	_ = json.Unmarshal(e.Details, &d)
	envs := d.Environments
	if d.Environment != "" {
		envs = append(envs, d.Environment)
	}
	if len(envs) == 0 && e.Action == string(domain.ActionSetRelease) {
		envs = append(envs, e.Target)
	}
	return envs
}

var auditActions = []domain.AuditAction{domain.ActionReleaseCreate, domain.ActionSetRelease, domain.ActionTokenCreate, domain.ActionTokenDelete,
	domain.ActionSecretSet, domain.ActionSecretDelete, domain.ActionSecretReveal, domain.ActionConfigReveal, domain.ActionMasterKeyRotate,
	"promotion", domain.ActionPromotionCreate, domain.ActionPromotionCheck, domain.ActionPromotionChecklist, domain.ActionPromotionApprove,
	domain.ActionPromotionReject, domain.ActionPromotionCancel, domain.ActionPromotionAdvance, domain.ActionPromotionApply,
	domain.ActionPromotionFail, domain.ActionPromotionSupersede, "flag", domain.ActionFlagOverride, domain.ActionFlagOverrideClear, domain.ActionFlagOverrideDrop}

const (
	auditPage = 100
	// auditScan bounds the entries one filtered page reads: the newest
	// auditScan before its start; "Older entries" goes on from there.
	auditScan = 10000
)

func (u *UI) audit(q *req) error {
	d := auditData{base: u.base(q, "Audit log")}
	d.Nav = "audit"
	for _, a := range auditActions {
		d.Actions = append(d.Actions, string(a))
	}
	res, err := u.app.VerifyAudit(q.ctx(), q.p, "")
	if err != nil {
		return err
	}
	d.Verify = res
	qv := q.r.URL.Query()
	d.Filter = auditFilter{Action: strings.TrimSpace(qv.Get("action")), Actor: strings.TrimSpace(qv.Get("actor")),
		Target: strings.TrimSpace(qv.Get("target")), Environment: strings.TrimSpace(qv.Get("environment"))}
	if d.Filter.set() {
		return u.filteredAudit(q, &d, int64(res.Entries))
	}
	after := max(0, int64(res.Entries)-auditPage)
	if s := qv.Get("after"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			after, d.Paged = n, true
		}
	}
	entries, _, err := u.app.ListAudit(q.ctx(), q.p, after, auditPage)
	if err != nil {
		return err
	}
	for _, e := range slices.Backward(entries) {
		d.Entries = append(d.Entries, auditRow{AuditEntry: e, DetailsText: string(e.Details)})
	}
	d.HasOlder, d.Older = after > 0, max(0, after-auditPage)
	d.OlderHref, d.NewestHref = "/audit?after="+strconv.FormatInt(d.Older, 10), "/audit"
	u.render(q.w, http.StatusOK, "audit", d)
	return nil
}

// filteredAudit shows the newest auditPage entries matching d.Filter among
// the auditScan entries before ?before (exclusive; default: the end).
func (u *UI) filteredAudit(q *req, d *auditData, last int64) error {
	d.Filtered = true
	before := last + 1
	if s := q.r.URL.Query().Get("before"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n <= before {
			before, d.Paged = n, true
		}
	}
	from := max(0, before-1-auditScan)
	var matched []domain.AuditEntry
	for after := from; after < before-1; {
		page, next, err := u.app.ListAudit(q.ctx(), q.p, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			if e.Seq >= before {
				break
			}
			if d.Filter.match(e) {
				matched = append(matched, e)
			}
		}
		if next <= after || len(page) == 0 {
			break
		}
		after = next
	}
	d.Scanned = int(before - 1 - from)
	oldest := from + 1 // the next page ends before it
	if len(matched) > auditPage {
		matched = matched[len(matched)-auditPage:]
		oldest = matched[0].Seq
	}
	for _, e := range slices.Backward(matched) {
		d.Entries = append(d.Entries, auditRow{AuditEntry: e, DetailsText: string(e.Details)})
	}
	d.HasOlder = oldest > 1
	fq := d.Filter.query()
	d.NewestHref = "/audit?" + fq.Encode()
	fq.Set("before", strconv.FormatInt(oldest, 10))
	d.OlderHref = "/audit?" + fq.Encode()
	u.render(q.w, http.StatusOK, "audit", d)
	return nil
}
