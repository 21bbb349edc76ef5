package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

// The flags page: every flag of one environment as the server has it in
// effect (its release's flag files with the environment's overrides), the
// override forms for those who may write flags there, and the evaluation
// of one flag for a context the user types, answered as OFREP answers.

// flagListJSON is the body of GET /api/v1/environments/{env}/flags, which
// Source.FlagList returns.
type flagListJSON struct {
	Environment string     `json:"environment"`
	Release     string     `json:"release"`
	Flags       []flagJSON `json:"flags"`
}

type flagJSON struct {
	Key               string         `json:"key"`
	Type              string         `json:"type"`
	State             string         `json:"state"`
	DefaultVariant    string         `json:"defaultVariant"`
	Variants          map[string]any `json:"variants"`
	Targeting         string         `json:"targeting"`
	NeedsTargetingKey bool           `json:"needsTargetingKey"`
	Source            string         `json:"source"`
	Problems          []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
		Pos     string `json:"pos"`
	} `json:"problems"`
	Override *struct {
		State          *string         `json:"state"`
		DefaultVariant *string         `json:"defaultVariant"`
		Targeting      json.RawMessage `json:"targeting"`
		UpdatedAt      time.Time       `json:"updatedAt"`
		UpdatedBy      string          `json:"updatedBy"`
	} `json:"override"`
}

type variantView struct{ Name, Value string }

type flagView struct {
	flagJSON
	Variants []variantView
	// OverrideText says what the override changes, in one line.
	OverrideText string
}

// evalView is an OFREP answer.
type evalView struct {
	Key          string         `json:"key"`
	Value        any            `json:"value"`
	Reason       string         `json:"reason"`
	Variant      string         `json:"variant"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails"`
	Metadata     map[string]any `json:"metadata"`
	// ValueText is the value's JSON ("" when OFREP leaves it out: the
	// caller's code default applies).
	ValueText string `json:"-"`
}

type flagsData struct {
	base
	Env, Release string
	Envs         []string
	Flags        []flagView
	CanWrite     bool
	// The evaluation form and, after a POST, its answer.
	EvalKey, Context string
	Eval             *evalView
	// Changes: the change requests of a restricted environment (changes.go).
	Changes *changesView
	// Edit is a refused targeting form (targeting.go).
	Edit *targetingEdit
}

// flagsPage is GET /environments/{env}/flags.
func (u *UI) flagsPage(q *req) error {
	d, err := u.flagsData(q)
	if err != nil {
		return err
	}
	u.render(q.w, http.StatusOK, "flags", d)
	return nil
}

func (u *UI) flagsData(q *req) (*flagsData, error) {
	env := q.r.PathValue("env")
	if err := q.p.Can(auth.ReadConfig, env); err != nil {
		return nil, err
	}
	raw, err := u.src.FlagList(env)
	if err != nil {
		return nil, err
	}
	var list flagListJSON
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "reading the flag listing")
	}
	d := &flagsData{base: u.base(q, "Flags of "+env), Env: env, Release: list.Release, Context: `{"targetingKey": "user-1"}`,
		CanWrite: q.p.Can(auth.WriteFlags, env) == nil}
	d.Nav, d.Live = "flags", []string{env}
	d.Changes = u.flagChanges(q, env)
	d.inEnv(q.p, env)
	for _, e := range u.visible(q.p) {
		if q.p.Can(auth.ReadConfig, e.Name) == nil {
			d.Envs = append(d.Envs, e.Name)
		}
	}
	for _, f := range list.Flags {
		v := flagView{flagJSON: f}
		for name, val := range f.Variants {
			v.Variants = append(v.Variants, variantView{name, mustJSON(val)})
		}
		sort.Slice(v.Variants, func(i, j int) bool { return v.Variants[i].Name < v.Variants[j].Name })
		if o := f.Override; o != nil {
			var parts []string
			if o.State != nil {
				parts = append(parts, "state "+*o.State)
			}
			if o.DefaultVariant != nil {
				parts = append(parts, "default variant "+*o.DefaultVariant)
			}
			if len(o.Targeting) > 0 {
				parts = append(parts, "targeting "+string(o.Targeting))
			}
			v.OverrideText = strings.Join(parts, ", ")
		}
		d.Flags = append(d.Flags, v)
	}
	if len(d.Flags) > 0 {
		d.EvalKey = d.Flags[0].Key
	}
	return d, nil
}

// flagList is env's flag listing, when p may read it.
func (u *UI) flagList(p *auth.Principal, env string) (flagListJSON, bool) {
	var list flagListJSON
	if p.Can(auth.ReadConfig, env) != nil {
		return list, false
	}
	raw, err := u.src.FlagList(env)
	if err != nil || json.Unmarshal(raw, &list) != nil {
		return list, false
	}
	return list, true
}

// flagOverride is POST /environments/{env}/flags/{key}: state=ENABLED or
// DISABLED, or defaultVariant=NAME, through the server's override (checked
// against the flag, then the App's use case: authorized, audited).
func (u *UI) flagOverride(q *req) error {
	env, key := q.r.PathValue("env"), q.r.PathValue("key")
	var state, variant *string
	if v := q.r.PostForm.Get("state"); v != "" {
		state = &v
	}
	if v := q.r.PostForm.Get("defaultVariant"); v != "" {
		variant = &v
	}
	if state == nil && variant == nil {
		return errs.Field("state", "choose a state (ENABLED, DISABLED) or a default variant")
	}
	if err := u.src.OverrideFlag(q.ctx(), q.p, env, key, state, variant); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/environments/"+url.PathEscape(env)+"/flags#flag-"+url.PathEscape(key), http.StatusSeeOther)
	return nil
}

// flagEvaluate is POST /environments/{env}/evaluate: the flags page
// with the OFREP answer for flag key and the context typed.
func (u *UI) flagEvaluate(q *req) error {
	d, err := u.flagsData(q)
	if err != nil {
		return err
	}
	d.EvalKey, d.Context = q.r.PostForm.Get("key"), q.r.PostForm.Get("context")
	if d.EvalKey == "" {
		return errs.Field("key", "choose a flag to evaluate")
	}
	ctxJSON := strings.TrimSpace(d.Context)
	if ctxJSON == "" {
		ctxJSON = "{}"
	}
	var ev evalView
	if err := json.Unmarshal(u.src.EvaluateFlag(d.Env, d.EvalKey, []byte(ctxJSON)), &ev); err != nil {
		return errs.Wrap(errs.Internal, err, "reading the evaluation")
	}
	if ev.Value != nil {
		ev.ValueText = mustJSON(ev.Value)
	}
	d.Eval = &ev
	d.Live = nil // a live reload would fetch the page without the answer
	u.render(q.w, http.StatusOK, "flags", d)
	return nil
}
