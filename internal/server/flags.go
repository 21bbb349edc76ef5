package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/flags"
)

// envFlags is the compiled flag set of one environment under its current
// release, part of the snapshot: OFREP evaluates against it and the flags
// listing is rendered once from it.
type envFlags struct {
	env     string
	release string     // "" when the environment has no release yet
	base    *flags.Set // the release's flags, before overrides
	set     *flags.Set // in effect: base with the overrides that hold
	// overrides in effect, by key, and a fingerprint of them all
	overrides   map[string]domain.FlagOverride
	fingerprint string
	list        body       // GET /api/v1/environments/{env}/flags
	ofrep       *ofrepPrep // OFREP's answers, prepared (ofrep_fast.go)
}

// noFlags is the flag document of a release without flag files.
var noFlags = flags.Parse()

// flagDocument parses the release's flag files once. A release that no
// longer loads has none.
func (r *loadedRelease) flagDocument() *flags.Document {
	r.flagOnce.Do(func() {
		r.flagDoc = noFlags
		if r.loaded != nil && r.loaded.Workspace != nil && len(r.loaded.Workspace.Flags) > 0 {
			r.flagDoc = flags.ReadFS(r.loaded.Workspace.FS, r.loaded.Workspace.Flags)
		}
	})
	return r.flagDoc
}

// flagsFor is the flag set of st with its overrides, reused from prev while
// its release and overrides are the same. An override of a flag whose
// variants the release changed (or that it no longer has) no longer holds:
// it is returned to be dropped. The server's own process environment never
// applies (no FEATURE_ variables): runtime overrides are the application's
// (SDK, envplane run).
func flagsFor(prev, st *envState, overrides []domain.FlagOverride) (*envFlags, []overrideDrop) {
	fp := overridesFingerprint(overrides)
	if prev != nil && prev.flags != nil && prev.env.Release == st.env.Release && prev.flags.fingerprint == fp {
		return prev.flags, nil
	}
	var base *flags.Set
	if prev != nil && prev.flags != nil && prev.env.Release == st.env.Release {
		base = prev.flags.base
	} else {
		doc := noFlags
		if st.cfg != nil {
			doc = st.cfg.rel.flagDocument()
		}
		base = doc.Set(st.env.Name)
	}
	set, held, drops := base, map[string]domain.FlagOverride{}, []overrideDrop(nil)
	for _, o := range overrides {
		in, ok := base.Flag(o.Key)
		switch {
		case !ok:
			drops = append(drops, overrideDrop{o.Environment, o.Key, "the release " + st.env.Release + " has no flag " + o.Key})
			continue
		case variantsDigest(in) != o.VariantsDigest:
			drops = append(drops, overrideDrop{o.Environment, o.Key, "the release " + st.env.Release + " changed the flag's variants"})
			continue
		}
		next, problems := set.WithOverride(o.Key, overrideOf(o))
		if len(problems) > 0 {
			drops = append(drops, overrideDrop{o.Environment, o.Key, "no longer applies: " + problems[0].Message})
			continue
		}
		set, held[o.Key] = next, o
	}
	f := newEnvFlags(st.env.Name, st.env.Release, set, held)
	f.base, f.fingerprint = base, fp
	return f, drops
}

func overrideOf(o domain.FlagOverride) flags.Override {
	return flags.Override{State: o.State, DefaultVariant: o.DefaultVariant, Targeting: o.Targeting}
}

// overridesFingerprint identifies a list of overrides.
func overridesFingerprint(os []domain.FlagOverride) string {
	if len(os) == 0 {
		return ""
	}
	h := sha256.New()
	for _, o := range os {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00", o.Key, o.VariantsDigest, o.UpdatedAt.UnixMicro())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// variantsDigest identifies a flag's variants (an override holds while
// they stay the same).
func variantsDigest(in flags.Info) string { return flags.VariantsDigest(in) }

// overrideDrop is an override a new release ended.
type overrideDrop struct{ env, key, reason string }

// flagOverrides reads every environment's overrides, by environment.
func (s *Server) flagOverrides(ctx context.Context) (map[string][]domain.FlagOverride, error) {
	all, err := s.app.FlagOverrides(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.FlagOverride{}
	for _, o := range all {
		out[o.Environment] = append(out[o.Environment], o)
	}
	return out, nil
}

// dropOverrides deletes, with an audit entry each, the overrides a new
// release ended; the snapshot already ignores them. It runs after the
// reload that found them (the write reloads again).
func (s *Server) dropOverrides(drops []overrideDrop) {
	if len(drops) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, d := range drops {
			if err := s.app.DropFlagOverride(ctx, d.env, d.key, d.reason); err != nil {
				s.log.Warn("flags: cannot drop an override the release ended; it stays ignored", "environment", d.env, "flag", d.key, "err", err)
			}
		}
	}()
}

func newEnvFlags(env, release string, set *flags.Set, overrides map[string]domain.FlagOverride) *envFlags {
	f := &envFlags{env: env, release: release, base: set, set: set, overrides: overrides, ofrep: prepareOFREP(env, set)}
	list := flagList{Environment: env, Release: release, Flags: []flagJSON{}}
	for _, in := range set.Flags() {
		j := newFlagJSON(in, set)
		if o, ok := overrides[in.Key]; ok {
			j.Override = &overrideJSON{State: o.State, DefaultVariant: o.DefaultVariant, Targeting: o.Targeting,
				UpdatedAt: o.UpdatedAt, UpdatedBy: o.UpdatedBy}
		}
		list.Flags = append(list.Flags, j)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(list); err != nil {
		// Variants come from YAML/JSON and always encode; keep a listing.
		b.Reset()
		b.WriteString(`{"environment":` + quoteJSON(env) + `,"flags":[]}` + "\n")
	}
	f.list = newBody(b.Bytes())
	return f
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// flagList is the body of GET /api/v1/environments/{env}/flags.
type flagList struct {
	Environment string     `json:"environment"`
	Release     string     `json:"release,omitempty"`
	Flags       []flagJSON `json:"flags"`
}

// flagJSON is one flag as it is in effect in one environment.
type flagJSON struct {
	Key               string         `json:"key"`
	Type              string         `json:"type"`
	State             string         `json:"state"`
	DefaultVariant    string         `json:"defaultVariant,omitempty"`
	Variants          map[string]any `json:"variants"`
	Targeting         string         `json:"targeting,omitempty"`
	NeedsTargetingKey bool           `json:"needsTargetingKey,omitempty"`
	Metadata          map[string]any `json:"metadata,omitempty"`
	Source            string         `json:"source,omitempty"`
	Problems          []flagProblem  `json:"problems,omitempty"`
	Override          *overrideJSON  `json:"override,omitempty"`
}

// overrideJSON is what an override changes in the environment.
type overrideJSON struct {
	State          *string         `json:"state,omitempty"`
	DefaultVariant *string         `json:"defaultVariant,omitempty"`
	Targeting      json.RawMessage `json:"targeting,omitempty"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	UpdatedBy      string          `json:"updatedBy"`
}

type flagProblem struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Pos     string `json:"pos,omitempty"`
}

func newFlagJSON(in flags.Info, set *flags.Set) flagJSON {
	j := flagJSON{Key: in.Key, Type: in.Type.String(), State: in.State, DefaultVariant: in.DefaultVariant,
		Variants: in.Variants, Targeting: in.Targeting, NeedsTargetingKey: set.NeedsTargetingKey(in.Key),
		Metadata: in.Metadata}
	if j.Variants == nil {
		j.Variants = map[string]any{}
	}
	if in.Pos.File != "" {
		j.Source = in.Pos.String()
	}
	for _, p := range in.Problems {
		fp := flagProblem{Field: p.Field, Message: p.Message}
		if p.Pos.File != "" {
			fp.Pos = p.Pos.String()
		}
		j.Problems = append(j.Problems, fp)
	}
	return j
}

// flagsEvent is the data of an "event: flags" on an environment's stream.
// Its type and etag follow OFREP's event stream payload, so that OFREP
// providers reading the stream (events?ofrep=true) refetch.
type flagsEvent struct {
	Type        string   `json:"type"` // refetchEvaluation
	Environment string   `json:"environment"`
	Release     string   `json:"release,omitempty"`
	ETag        string   `json:"etag"`
	Flags       []string `json:"flags"` // the keys whose definition changed
}

// flagsChanged reports the flag event of a snapshot change of one
// environment: its flag set changed (a new release with other flag files).
func flagsChanged(prev, st *envState) (flagsEvent, bool) {
	if prev == nil || prev.flags == nil || st.flags == nil || prev.flags == st.flags {
		// A new environment announces its release; its flags come with it.
		return flagsEvent{}, false
	}
	a, b := prev.flags.set, st.flags.set
	if a.Digest() == b.Digest() {
		return flagsEvent{}, false
	}
	changed := changedFlags(a, b)
	if len(changed) == 0 && len(a.Keys()) == 0 && len(b.Keys()) == 0 {
		return flagsEvent{}, false
	}
	return flagsEvent{Type: "refetchEvaluation", Environment: st.env.Name, Release: st.env.Release,
		ETag: b.Digest(), Flags: changed}, true
}

// changedFlags lists the keys added, removed or defined differently in b.
func changedFlags(a, b *flags.Set) []string {
	out := []string{}
	same := func(x, y flags.Info) bool {
		x.Pos = y.Pos
		return reflect.DeepEqual(x, y) && a.NeedsTargetingKey(x.Key) == b.NeedsTargetingKey(y.Key)
	}
	ak, bk := a.Keys(), b.Keys()
	i, j := 0, 0
	for i < len(ak) || j < len(bk) {
		switch {
		case j == len(bk) || i < len(ak) && ak[i] < bk[j]:
			out = append(out, ak[i])
			i++
		case i == len(ak) || bk[j] < ak[i]:
			out = append(out, bk[j])
			j++
		default:
			x, _ := a.Flag(ak[i])
			y, _ := b.Flag(bk[j])
			if !same(x, y) {
				out = append(out, ak[i])
			}
			i++
			j++
		}
	}
	return out
}

// flagsOf is the flag set of env in the current snapshot.
func (s *Server) flagsOf(env string) (*envFlags, error) {
	st := s.snap.Load().byName[env]
	if st == nil {
		return nil, errs.E(errs.NotFound, "unknown environment %q", env)
	}
	if st.flags == nil { // not reached: every reload sets it
		return newEnvFlags(env, st.env.Release, noFlags.Set(env), nil), nil
	}
	return st.flags, nil
}

// listFlags answers the flags in effect in one environment: key, type,
// state, default variant, variants and a summary of the targeting, with the
// problems of flags that did not load. ETag and If-None-Match as for config.
func (s *Server) listFlags(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	f, err := s.flagsOf(r.PathValue("env"))
	if err != nil {
		return err
	}
	h := w.Header()
	h["Cache-Control"] = hdrRevalid
	h["Etag"] = f.list.etagHdr
	h["Vary"] = hdrVaryAuth
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, f.list.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = f.list.lenHdr
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(f.list.data)
	return err
}

// patchFlag is PATCH /api/v1/environments/{env}/flags/{key}: overrides any
// of the flag's state, defaultVariant and targeting in this environment
// without a release (fields not given keep the override before; targeting
// null or {} removes the targeting). Checked against the flag (422 naming
// the field), audited, announced as an "event: flags" naming the key.
func (s *Server) patchFlag(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env, key := r.PathValue("env"), r.PathValue("key")
	var body struct {
		State          *string         `json:"state"`
		DefaultVariant *string         `json:"defaultVariant"`
		Targeting      json.RawMessage `json:"targeting"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	fc, err := s.overrideFlag(r.Context(), p, env, key, body.State, body.DefaultVariant, body.Targeting)
	if err != nil {
		return err
	}
	if fc != nil { // a restricted environment: the change waits for approvals
		return writeJSON(w, http.StatusAccepted, flagChangeOf(*fc))
	}
	// The write reloaded the snapshot: answer the flag as now in effect.
	f, err := s.flagsOf(env)
	if err != nil {
		return err
	}
	in, _ := f.set.Flag(key)
	j := newFlagJSON(in, f.set)
	if held, ok := f.overrides[key]; ok {
		j.Override = &overrideJSON{State: held.State, DefaultVariant: held.DefaultVariant, Targeting: held.Targeting,
			UpdatedAt: held.UpdatedAt, UpdatedBy: held.UpdatedBy}
	}
	return writeJSON(w, http.StatusOK, j)
}

// overrideFlag merges the fields given into the override of flag key in
// env, checks the result against the flag and stores it through the App
// (authorized, audited, announced). In a restricted environment it opens
// a change request instead, returned, which applies once approved. The
// API's PATCH and the web UI share it.
func (s *Server) overrideFlag(ctx context.Context, p *auth.Principal, env, key string, state, defaultVariant *string, targeting json.RawMessage) (*domain.FlagChange, error) {
	if err := p.Can(auth.WriteFlags, env); err != nil {
		return nil, err // before anything about the flag is told
	}
	if state == nil && defaultVariant == nil && targeting == nil {
		return nil, errs.Field("body", "give at least one of state, defaultVariant, targeting")
	}
	f, err := s.flagsOf(env)
	if err != nil {
		return nil, err
	}
	in, ok := f.base.Flag(key)
	if !ok {
		return nil, errs.E(errs.NotFound, "no flag %q in environment %q", key, env)
	}
	var before *domain.FlagOverride
	if held, ok := f.overrides[key]; ok {
		before = &held
	}
	o := f.overrides[key]
	o.Environment, o.Key, o.VariantsDigest = env, key, variantsDigest(in)
	if state != nil {
		o.State = state
	}
	if defaultVariant != nil {
		o.DefaultVariant = defaultVariant
	}
	if targeting != nil {
		o.Targeting = targeting
	}
	if _, problems := f.base.WithOverride(key, overrideOf(o)); len(problems) > 0 {
		e := &errs.Error{Kind: errs.Unprocessable, Message: fmt.Sprintf("the override of flag %q does not apply", key)}
		for _, pr := range problems {
			e.Fields = append(e.Fields, errs.FieldError{Field: pr.Field, Message: pr.Message})
		}
		return nil, e
	}
	if st := s.snap.Load().byName[env]; st != nil && st.env.Protection == domain.ProtectionRestricted {
		fc, err := s.app.RequestFlagChange(ctx, p, app.FlagChangeRequest{Environment: env, Key: key,
			Change:   domain.FlagFields{State: state, DefaultVariant: defaultVariant, Targeting: targeting},
			Override: o, Before: before, Release: f.release, VariantsDigest: o.VariantsDigest})
		if err != nil {
			return nil, err
		}
		return &fc, nil
	}
	return nil, s.app.SetFlagOverride(ctx, p, o)
}
