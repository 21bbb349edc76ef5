// Package report computes the two views of resolved configs that the CLI
// and the server both answer with: where one value came from (explain) and
// how two environments differ (diff). Their JSON shapes are part of the
// command-line and API contracts.
package report

import (
	"encoding/json"

	"github.com/envplane/envplane/internal/interp"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/tree"
)

// Source is one place a value came from, as `explain --format json` prints it.
type Source struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Version int    `json:"version,omitempty"`
	// File is the workspace secrets file a secret came from.
	File  string          `json:"file,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Via   *Source         `json:"via,omitempty"`
}

// Explanation is the answer of explain.
type Explanation struct {
	Key        string          `json:"key"`
	Value      json.RawMessage `json:"value"`
	Source     Source          `json:"source"`
	Overridden []Source        `json:"overridden"`
	Unresolved bool            `json:"unresolved,omitempty"`
	Template   string          `json:"template,omitempty"`
}

func sourceOf(v *tree.Value, value json.RawMessage) Source {
	s := Source{Kind: v.Src.Kind.String(), Name: v.Src.Name, Line: v.Src.Line, Column: v.Src.Column, Version: int(v.Src.Version), File: v.Src.File, Value: value}
	if v.Via != nil {
		via := Source{Kind: v.Via.Kind.String(), Name: v.Via.Name, Line: v.Via.Line, Column: v.Via.Column, Version: int(v.Via.Version), File: v.Via.File}
		s.Via = &via
	}
	return s
}

// Explain describes the value v found at key, with every value it
// overrode; values are redacted as o says.
func Explain(v *tree.Value, key string, o render.Options) Explanation {
	out := Explanation{
		Key:        key,
		Value:      json.RawMessage(render.JSON(v, key, o)),
		Source:     sourceOf(v, nil),
		Unresolved: v.Unresolved,
		Template:   v.Template,
		Overridden: make([]Source, 0, len(v.Overridden)),
	}
	if v.Template != "" && o.Hidden(key, v) {
		// A template's literal text is the secret's own text
		// ("hunter2-${HOST}", "${PASSWORD:-hunter2}"): only its references show.
		out.Template = render.Redacted
		if t, err := interp.Parse(v.Template); err == nil {
			out.Template = t.Masked(render.Redacted)
		}
	}
	for _, lower := range v.Overridden {
		out.Overridden = append(out.Overridden, sourceOf(lower, json.RawMessage(render.JSON(lower, key, o))))
	}
	return out
}

// Change is one entry of a diff: kind is added, removed or changed.
type Change struct {
	Path string          `json:"path"`
	Kind string          `json:"kind"`
	A    json.RawMessage `json:"a"`
	B    json.RawMessage `json:"b"`
	// Secret: a value of the change is hidden unless revealed.
	Secret bool `json:"-"`
}

type leaf struct {
	path string
	v    *tree.Value
}

func leaves(root *tree.Value) []leaf {
	var out []leaf
	if root == nil {
		return nil
	}
	tree.Walk(root, func(p string, v *tree.Value) {
		if p != "" && !(v.Kind == tree.Map && len(v.Fields) == 0) {
			out = append(out, leaf{p, v})
		}
	})
	return out
}

// Diff lists changes from ta to tb in A's key order, then keys only B has.
// Hidden values (o) show as "<redacted>" on both sides, and whether they
// changed is still reported; values are compared, never their redaction.
// A change is Secret when its redacted form differs from its revealed one,
// hidden values inside lists included.
func Diff(ta, tb *tree.Value, o render.Options) []Change {
	la, lb := leaves(ta), leaves(tb)
	inB := make(map[string]*tree.Value, len(lb))
	for _, l := range lb {
		inB[l.path] = l.v
	}
	inA := make(map[string]bool, len(la))
	out := []Change{}
	concealed, revealed := o, o
	concealed.Reveal, revealed.Reveal = false, true
	hidden := func(p string, vs ...*tree.Value) bool {
		for _, v := range vs {
			if v != nil && concealed.Hidden(p, v) {
				return true
			}
		}
		return false
	}
	// show renders both sides, redacted or as o says, and whether any
	// hidden value is in them.
	show := func(p string, a, b *tree.Value) (ja, jb json.RawMessage, secret bool) {
		hide := hidden(p, a, b)
		one := func(v *tree.Value) json.RawMessage {
			if v == nil {
				return json.RawMessage("null")
			}
			// Redaction still applies inside lists of maps (alerts.channels.0.serviceKey).
			plain := render.JSON(v, p, concealed)
			if hide {
				plain = `"` + render.Redacted + `"`
			}
			full := render.JSON(v, p, revealed)
			secret = secret || plain != full
			if o.Reveal {
				return json.RawMessage(full)
			}
			return json.RawMessage(plain)
		}
		return one(a), one(b), secret
	}
	// Unrevealed, a value built from a secret equals only a value built the
	// same way (same template) from secrets: compared with text the caller
	// wrote, "unchanged" would confirm a guess of the secret.
	same := func(a, b *tree.Value) bool {
		sa, sb := fromSecret(a), fromSecret(b)
		if !o.Reveal && (sa || sb) && (sa != sb || a.Template != b.Template) {
			return false
		}
		return tree.Equal(a, b)
	}
	for _, l := range la {
		inA[l.path] = true
		bv, ok := inB[l.path]
		switch {
		case !ok:
			a, b, secret := show(l.path, l.v, nil)
			out = append(out, Change{Path: l.path, Kind: "removed", A: a, B: b, Secret: secret})
		case !same(l.v, bv):
			a, b, secret := show(l.path, l.v, bv)
			out = append(out, Change{Path: l.path, Kind: "changed", A: a, B: b, Secret: secret})
		}
	}
	for _, l := range lb {
		if !inA[l.path] {
			a, b, secret := show(l.path, nil, l.v)
			out = append(out, Change{Path: l.path, Kind: "added", A: a, B: b, Secret: secret})
		}
	}
	return out
}

// fromSecret reports whether v or anything in it was built from a secret.
func fromSecret(v *tree.Value) bool {
	if v.Secret || v.Sealed {
		return true
	}
	for _, it := range v.Items {
		if fromSecret(it) {
			return true
		}
	}
	for _, f := range v.Fields {
		if fromSecret(f.Value) {
			return true
		}
	}
	return false
}
