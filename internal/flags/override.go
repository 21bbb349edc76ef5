package flags

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// Override changes one flag of one environment without a release (the
// server's PATCH …/flags/{key}). A nil field leaves the flag's own.
type Override struct {
	State          *string         // ENABLED or DISABLED
	DefaultVariant *string         // one of the flag's variants
	Targeting      json.RawMessage // JSONLogic; {} or null: no targeting
}

// overrideFile names the source of an override's targeting in problems.
const overrideFile = "override"

// WithOverride returns the set with flag key changed by o, or the problems
// that keep o from applying, each naming its field (state, defaultVariant,
// targeting; key for a flag that does not exist or did not load). A
// `$ref` in an override's targeting has no evaluators to refer to.
func (s *Set) WithOverride(key string, o Override) (*Set, []Problem) {
	f, ok := s.flags[key]
	bad := func(field, format string, args ...any) []Problem {
		return []Problem{{Pos: f0pos(f), Flag: key, Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	if !ok {
		return nil, bad("key", "no flag %q in this environment", key)
	}
	if len(f.problems) > 0 {
		return nil, bad("key", "flag %q did not load (%s); fix its file instead", key, f.problems[0].Message)
	}
	nf := *f
	var problems []Problem
	if o.State != nil {
		switch *o.State {
		case "ENABLED":
			nf.disabled = false
		case "DISABLED":
			nf.disabled = true
		default:
			problems = append(problems, bad("state", "expected ENABLED or DISABLED, found %q", *o.State)...)
		}
	}
	if o.DefaultVariant != nil {
		v, ok := f.variants[*o.DefaultVariant]
		if !ok {
			problems = append(problems, bad("defaultVariant", "%q is not a variant (variants: %s)", *o.DefaultVariant, strings.Join(sortedKeys(f.variants), ", "))...)
		}
		nf.defaultVariant, nf.hasDefault, nf.defaultValue = *o.DefaultVariant, true, v
	}
	if o.Targeting != nil {
		doc, errs := tree.ParseYAML(overrideFile, append(append([]byte(`{"targeting": `), o.Targeting...), '}'))
		var t *tree.Value
		if errs == nil {
			t = doc.Get("targeting")
		}
		switch {
		case errs != nil || t == nil:
			problems = append(problems, bad("targeting", "not valid JSON")...)
		case t.Kind == tree.Null || t.Kind == tree.Map && len(t.Fields) == 0:
			nf.targeting, nf.rule, nf.usesKey = nil, nil, false
		case t.Kind != tree.Map:
			problems = append(problems, bad("targeting", "expected a JSONLogic rule (an object), found %s", describe(t))...)
		default:
			c := &compiler{flag: key, field: "targeting"}
			n := c.compile(t)
			problems = append(problems, c.problems...)
			// A file's rule may name a variant it lacks (flagd answers an
			// error at evaluation); an override is refused before it breaks
			// every evaluation of the flag.
			for _, name := range literalVariants(t, nil) {
				if _, ok := f.variants[name]; !ok {
					problems = append(problems, bad("targeting", "the rule answers %q, which is not a variant (variants: %s)", name, strings.Join(sortedKeys(f.variants), ", "))...)
				}
			}
			nf.targeting, nf.rule, nf.usesKey = n.fn, t, c.usesKey
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	ns := *s
	ns.flags = maps.Clone(s.flags)
	ns.flags[key] = &nf
	sum := sha256.New()
	fmt.Fprintf(sum, "%s\x00%s\x00%v\x00%v\x00%s", s.digest, key, deref(o.State), deref(o.DefaultVariant), o.Targeting)
	ns.digest = s.digest + "+" + hex.EncodeToString(sum.Sum(nil)[:8])
	return &ns, nil
}

// literalVariants appends the variant names rule can answer as literal
// strings: the outcomes of "if" (nested ones too) and the buckets of
// "fractional". Computed outcomes are the evaluator's business.
func literalVariants(rule *tree.Value, out []string) []string {
	switch {
	case rule == nil:
	case rule.Kind == tree.String:
		out = append(out, rule.Str)
	case rule.Kind == tree.Map && len(rule.Fields) == 1:
		args := rule.Fields[0].Value
		if args.Kind != tree.Array {
			break
		}
		switch rule.Fields[0].Key {
		case "if", "?:":
			for i, a := range args.Items {
				if i%2 == 1 || i == len(args.Items)-1 && i > 0 {
					out = literalVariants(a, out)
				}
			}
		case "fractional":
			for _, b := range args.Items {
				if b.Kind == tree.Array && len(b.Items) > 0 && b.Items[0].Kind == tree.String {
					out = append(out, b.Items[0].Str)
				}
			}
		}
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return "\x01" // not given, unlike ""
	}
	return *p
}

func f0pos(f *flag) (p diag.Pos) {
	if f != nil {
		p = f.pos
	}
	return p
}
