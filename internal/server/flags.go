package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/flags"
)

// envFlags is the compiled flag set of one environment under its current
// release, part of the snapshot: OFREP evaluates against it and the flags
// listing is rendered once from it.
type envFlags struct {
	env     string
	release string // "" when the environment has no release yet
	set     *flags.Set
	list    body // GET /api/v1/environments/{env}/flags
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

// flagsFor is the flag set of st, reused from prev while its release is the
// same. The server's own process environment never applies (no FEATURE_
// variables): runtime overrides are the application's (SDK, envplane run).
func flagsFor(prev, st *envState) *envFlags {
	if prev != nil && prev.flags != nil && prev.env.Release == st.env.Release {
		return prev.flags
	}
	doc := noFlags
	if st.cfg != nil {
		doc = st.cfg.rel.flagDocument()
	}
	return newEnvFlags(st.env.Name, st.env.Release, doc.Set(st.env.Name))
}

func newEnvFlags(env, release string, set *flags.Set) *envFlags {
	f := &envFlags{env: env, release: release, set: set}
	list := flagList{Environment: env, Release: release, Flags: []flagJSON{}}
	for _, in := range set.Flags() {
		list.Flags = append(list.Flags, newFlagJSON(in, set))
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
		return newEnvFlags(env, st.env.Release, noFlags.Set(env)), nil
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
