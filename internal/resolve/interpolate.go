package resolve

import (
	"github.com/envplane/envplane/internal/domain"
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/interp"
	"github.com/envplane/envplane/internal/tree"
)

// interpolate expands ${…} in every string leaf under v. path is v's key path.
func (s *session) interpolate(v *tree.Value, path []string) {
	switch v.Kind {
	case tree.Map:
		for _, f := range v.Fields {
			s.interpolate(f.Value, append(path, f.Key))
		}
	case tree.Array:
		for i, it := range v.Items {
			if it.Kind == tree.String || it.Kind == tree.Map || it.Kind == tree.Array {
				s.interpolate(it, append(path, strconv.Itoa(i)))
			}
		}
	case tree.String:
		if interp.HasRefs(v.Str) {
			s.expand(v, path)
		}
	}
}

// refPos is the position of the reference at byte offset off of v's text.
func refPos(v *tree.Value, off int) diag.Pos {
	p := v.Src.Pos()
	if p.Line > 0 && !strings.Contains(v.Str[:off], "\n") {
		p.Column += off
		if v.Quoted {
			p.Column++
		}
	}
	return p
}

func (s *session) expand(v *tree.Value, path []string) {
	tmpl, err := interp.Parse(v.Str)
	if err != nil {
		se, _ := err.(*interp.SyntaxError)
		off := 0
		if se != nil {
			off = se.Offset
		}
		s.problem(RuleParse, joinPath(path), refPos(v, off), "%s: bad reference: %v", joinPath(path), err)
		v.Unresolved = true
		return
	}
	fromSecret, sealed := false, false
	var single tree.Source
	// grown is what the values looked up add to the tree; once that would
	// pass MaxTreeBytes they are replaced by nothing, so that a template
	// repeating a large secret never builds a huge string.
	grown, over := 0, false
	counted := func(val string) (string, bool) {
		if grown += len(val); s.size+grown > maxTreeBytes {
			over = true
			return "", true
		}
		return val, true
	}
	lookup := func(name string) (string, bool) {
		if s.req.Getenv != nil {
			if val, ok := s.req.Getenv(name); ok {
				single = tree.Source{Kind: tree.SourceEnv, Name: name}
				return counted(val)
			}
		}
		if sec, ok := s.req.Secrets[name]; ok {
			fromSecret = true
			single = tree.Source{Kind: tree.SourceSecret, Name: name, Version: int32(sec.Version), File: sec.File}
			if sec.Sealed {
				sealed = true
				return domain.SealedValue, true
			}
			return counted(sec.Value)
		}
		return "", false
	}
	out, problems := tmpl.Expand(lookup)
	if s.size += grown; over {
		s.over(v, path)
		v.Unresolved = true
		return
	}
	template := v.Str
	if len(problems) > 0 {
		for _, p := range problems {
			s.problem(RuleUnresolved, joinPath(path), refPos(v, p.Offset), "%s: %s", joinPath(path), p.Message)
		}
		v.Unresolved = true
		v.Template = template
		return
	}
	v.Str = out
	v.Template = template
	v.Secret = v.Secret || fromSecret
	v.Sealed = sealed
	ref, isSingle := tmpl.SingleRef()
	if !isSingle {
		return
	}
	if sealed {
		// The value is unknown: keep the source, skip typing.
		via := v.Src
		v.Via, v.Src = &via, single
		return
	}
	// The value is one reference: when it came from a variable or secret, that
	// is its source, and the file is where it was asked for.
	if single.Name == ref.Name {
		via := v.Src
		v.Via = &via
		v.Src = single
	}
	s.coerceByHint(v, path)
}

// coerceByHint gives a single-reference value the type the schema, the layer
// below or another environment gives its key. Text that does not fit that
// type stays a string; schema validation and lint report the mismatch.
func (s *session) coerceByHint(v *tree.Value, path []string) {
	if v.Str == "" {
		return
	}
	kind, elem, ok := s.hint(v, path)
	switch {
	case !ok || kind == tree.String || kind == tree.Map || kind == tree.Null:
		return
	case kind != tree.Array && !mayBeTyped(v.Str):
		return // a plain word can only become a one-item list
	}
	if c, err := coerce(v.Str, kind, elem); err == nil {
		v.Kind, v.Bool, v.Int, v.Uint, v.Float, v.Items = c.Kind, c.Bool, c.Int, c.Uint, c.Float, c.Items
		for _, it := range v.Items {
			it.Src, it.Secret = v.Src, v.Secret
		}
		if v.Kind != tree.String {
			v.Str = ""
		}
	}
}

// mayBeTyped reports whether text could become a number or a boolean
// (plain words, which cannot, spare coerce's failed parse).
func mayBeTyped(text string) bool {
	if text == "" {
		return false
	}
	if strings.ContainsRune(text, ',') {
		return true
	}
	switch strings.ToLower(text) {
	case "true", "false", "yes", "no", "on", "off":
		return true
	}
	// Only text that starts like a number is worth parsing as one (and a
	// failed parse allocates an error).
	if c := text[0]; !(c >= '0' && c <= '9') && c != '-' && c != '+' && c != '.' {
		return false
	}
	_, err := strconv.ParseFloat(text, 64)
	return err == nil
}

// hint finds the type of the key at path: schema first, then the value this
// one overrode, then the same key in the other environments.
func (s *session) hint(v *tree.Value, path []string) (tree.Kind, tree.Kind, bool) {
	if k, e, ok := s.localHint(v, path); ok {
		return k, e, true
	}
	// While another environment's tree is being built as a hint, its own
	// values take no hints from further environments: that would recurse.
	if s.hinting {
		return 0, 0, false
	}
	for _, env := range s.r.ws.Environments {
		if env.Name == s.req.Env {
			continue
		}
		if k, e, ok := typed(s.hintTree(env.Name).Lookup(path)); ok {
			return k, e, true
		}
	}
	return 0, 0, false
}

// localHint is the part of hint that needs no other environment: the
// schema, then the value this one overrode.
func (s *session) localHint(v *tree.Value, path []string) (tree.Kind, tree.Kind, bool) {
	if s.r.schema != nil {
		if k, e, ok := s.r.schema.KindAt(path); ok {
			return k, e, true
		}
	}
	for _, o := range v.Overridden {
		if k, e, ok := typed(o); ok {
			return k, e, true
		}
	}
	return 0, 0, false
}

// typed reports the kind of a value that is not itself a reference.
func typed(v *tree.Value) (tree.Kind, tree.Kind, bool) {
	if v == nil || v.Kind == tree.Null || (v.Kind == tree.String && interp.HasRefs(v.Str)) {
		return 0, 0, false
	}
	var elem tree.Kind = tree.String
	if v.Kind == tree.Array && len(v.Items) > 0 {
		elem = v.Items[0].Kind
	}
	return v.Kind, elem, true
}

// hintTree is the merged file layers of env for the same service, parsed once.
func (s *session) hintTree(env string) *tree.Value {
	key := env + "\x00" + s.req.Service
	if t, ok := s.r.hints[key]; ok {
		return t
	}
	s.hinting = true
	t := s.layers(env, s.req.Service, false)
	s.hinting = false
	s.r.hints[key] = t
	return t
}

func joinPath(path []string) string { return strings.Join(path, ".") }
