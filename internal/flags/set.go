package flags

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// Set is the compiled flags of one environment. It is immutable and safe
// for concurrent use; evaluating a flag walks no JSON.
type Set struct {
	env    string
	digest string
	flags  map[string]*flag
	keys   []string // sorted
	now    func() time.Time
}

// flag is one compiled flag.
type flag struct {
	key            string
	pos            diag.Pos
	typ            Type
	disabled       bool
	variants       map[string]any
	defaultVariant string
	hasDefault     bool
	defaultValue   any
	targeting      node
	rule           *tree.Value // the targeting as written, for summaries
	metadata       map[string]any
	problems       []Problem // non-empty: the flag evaluates to PARSE_ERROR
	override       string    // FEATURE_ variable forcing the flag
	usesKey        bool      // targeting buckets by the targeting key
}

// Info describes one flag of a Set, for listings and the API.
type Info struct {
	Key            string
	Type           Type
	State          string // ENABLED or DISABLED
	DefaultVariant string
	Variants       map[string]any
	Targeting      string // a one-line summary; "" when there is none
	Metadata       map[string]any
	Pos            diag.Pos
	Problems       []Problem
	Override       string // the FEATURE_ variable that forces it, if any
}

// Env is the environment the set was compiled for ("" for none).
func (s *Set) Env() string { return s.env }

// Digest identifies the flag files and environment the set came from
// (an ETag for OFREP); overrides change it.
func (s *Set) Digest() string { return s.digest }

// Keys returns the flag keys, sorted.
func (s *Set) Keys() []string { return s.keys }

// Flags describes every flag, sorted by key.
func (s *Set) Flags() []Info {
	out := make([]Info, len(s.keys))
	for i, k := range s.keys {
		out[i], _ = s.Flag(k)
	}
	return out
}

// Flag describes one flag.
func (s *Set) Flag(key string) (Info, bool) {
	f, ok := s.flags[key]
	if !ok {
		return Info{}, false
	}
	state := "ENABLED"
	if f.disabled {
		state = "DISABLED"
	}
	return Info{Key: f.key, Type: f.typ, State: state, DefaultVariant: f.defaultVariant, Variants: f.variants,
		Targeting: summarize(f.rule), Metadata: f.metadata, Pos: f.pos, Problems: f.problems, Override: f.override}, true
}

// WithClock returns the set with another clock for $flagd.timestamp.
func (s *Set) WithClock(now func() time.Time) *Set {
	c := *s
	c.now = now
	return &c
}

func (d *Document) compile(env string) *Set {
	s := &Set{env: env, digest: d.digest + ":" + env, flags: map[string]*flag{}, now: time.Now}
	for _, df := range d.defs {
		f := &flag{key: df.key, pos: df.pos}
		switch {
		case len(df.problems) > 0:
			f.problems = df.problems
		case df.short != nil:
			compileShorthand(f, df, env)
		default:
			sp := df.base
			if o, ok := df.envs[env]; ok {
				sp = merge(sp, o)
			}
			compileNative(f, df, sp, env)
		}
		if len(f.problems) > 0 {
			f.targeting = nil
		}
		s.flags[df.key] = f
		s.keys = append(s.keys, df.key)
	}
	sort.Strings(s.keys)
	return s
}

func merge(base, o spec) spec {
	if o.state != nil {
		base.state = o.state
	}
	if o.variants != nil {
		base.variants = o.variants
	}
	if o.defaultVariant != nil {
		base.defaultVariant = o.defaultVariant
	}
	if o.targeting != nil {
		base.targeting = o.targeting
	}
	if o.metadata != nil {
		if base.metadata == nil {
			base.metadata = o.metadata
		} else {
			m := *base.metadata
			m.Fields = append(append([]tree.Field(nil), base.metadata.Fields...), o.metadata.Fields...)
			base.metadata = &m
		}
	}
	return base
}

func compileNative(f *flag, df *def, sp spec, env string) {
	field := func(name string) string {
		if _, ok := df.envs[env]; ok && env != "" {
			return "environments." + env + "/" + name
		}
		return name
	}
	bad := func(at *tree.Value, name, format string, args ...any) {
		f.problems = append(f.problems, Problem{Pos: at.Src.Pos(), Flag: df.key, Field: field(name), Message: fmt.Sprintf(format, args...)})
	}
	if st := sp.state; st != nil {
		switch {
		case st.Kind == tree.String && st.Str == "ENABLED":
		case st.Kind == tree.String && st.Str == "DISABLED":
			f.disabled = true
		default:
			bad(st, "state", "expected ENABLED or DISABLED, found %s", describe(st))
		}
	}
	f.variants = map[string]any{}
	if v := sp.variants; v != nil {
		if v.Kind != tree.Map || len(v.Fields) == 0 {
			bad(v, "variants", "expected a non-empty map of variant name to value, found %s", describe(v))
		} else {
			f.typ = variantTypes(v, func(at *tree.Value, format string, args ...any) { bad(at, "variants", format, args...) })
			for _, fl := range v.Fields {
				f.variants[fl.Key] = literal(fl.Value)
			}
		}
	}
	if dv := sp.defaultVariant; dv != nil && dv.Kind != tree.Null {
		switch {
		case dv.Kind != tree.String:
			bad(dv, "defaultVariant", "expected the name of a variant (a string), found %s", describe(dv))
		default:
			if _, ok := f.variants[dv.Str]; !ok && len(f.variants) > 0 {
				bad(dv, "defaultVariant", "%q is not a variant (variants: %s)", dv.Str, strings.Join(sortedKeys(f.variants), ", "))
			}
			f.defaultVariant, f.hasDefault, f.defaultValue = dv.Str, true, f.variants[dv.Str]
		}
	}
	if m := sp.metadata; m != nil {
		if m.Kind != tree.Map {
			bad(m, "metadata", "expected a map of values, found %s", describe(m))
		} else {
			f.metadata = literal(m).(map[string]any)
		}
	}
	if len(df.setMeta) > 0 {
		md := maps.Clone(df.setMeta)
		maps.Copy(md, f.metadata)
		f.metadata = md
	}
	if t := sp.targeting; t != nil && !(t.Kind == tree.Map && len(t.Fields) == 0) && t.Kind != tree.Null {
		c := &compiler{evaluators: df.evaluators, flag: df.key, field: field("targeting")}
		n := c.compile(t)
		f.problems = append(f.problems, c.problems...)
		f.targeting, f.rule, f.usesKey = n.fn, t, c.usesKey
	}
}

// variantTypes is the type of a flag's variants; variants of different
// types are a problem.
func variantTypes(v *tree.Value, bad func(*tree.Value, string, ...any)) Type {
	var typ Type
	var first string
	for _, fl := range v.Fields {
		t := typeOf(fl.Value)
		if t == Any {
			bad(fl.Value, "variant %q: expected a boolean, string, number or object, found %s", fl.Key, describe(fl.Value))
			continue
		}
		if typ == Integer && t == Float || typ == Float && t == Integer {
			typ = Float
			continue
		}
		if typ != Any && t != typ {
			bad(fl.Value, "variants of mixed types: %q is %s but %q is %s", fl.Key, t, first, typ)
			continue
		}
		if typ == Any {
			first = fl.Key
		}
		typ = t
	}
	return typ
}

func typeOf(v *tree.Value) Type {
	switch v.Kind {
	case tree.Bool:
		return Boolean
	case tree.String:
		return String
	case tree.Int, tree.Uint:
		return Integer
	case tree.Float:
		return Float
	case tree.Map:
		return Object
	}
	return Any
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// compileShorthand compiles the seeds' form into the native one: variants
// on (true) and off (false); where the environment's value is true the
// flag is on for everyone; where it is false the rollout, if any, decides
// who gets on, else it is off; environments not listed use default.
func compileShorthand(f *flag, df *def, env string) {
	sh := df.short
	on := sh.def.Bool
	if v, ok := sh.envs[env]; ok {
		on = v.Bool
	}
	f.typ = Boolean
	f.variants = map[string]any{"on": true, "off": false}
	f.hasDefault = true
	f.defaultVariant, f.defaultValue = "off", false
	if on {
		f.defaultVariant, f.defaultValue = "on", true
		return
	}
	if sh.rollout == nil {
		return
	}
	src := sh.rollout.Src
	var rule *tree.Value
	switch sh.rollout.Get("type").Str {
	case "percentage":
		p, _ := number(sh.rollout.Get("value"))
		onW, offW := p, 100-p
		if p != float64(int64(p)) {
			// Weights are whole numbers: basis points keep two decimals.
			onW, offW = float64(int64(p*100+0.5)), 10000-float64(int64(p*100+0.5))
		}
		rule = mk(src, map[string]any{"fractional": []any{[]any{"on", onW}, []any{"off", offW}}})
	case "user_attribute":
		rule = mk(src, map[string]any{"if": []any{
			map[string]any{"===": []any{map[string]any{"var": sh.rollout.Get("attribute").Str}, true}}, "on", nil}})
	}
	c := &compiler{flag: df.key, field: "rollout"}
	f.targeting, f.rule = c.compile(rule).fn, rule
	f.usesKey = c.usesKey
	f.problems = append(f.problems, c.problems...)
}

// mk builds a tree from Go values, every node at src.
func mk(src tree.Source, x any) *tree.Value {
	v := &tree.Value{Src: src}
	switch t := x.(type) {
	case nil:
	case bool:
		v.Kind, v.Bool = tree.Bool, t
	case float64:
		v.Kind, v.Float = tree.Float, t
		if t == float64(int64(t)) {
			v.Kind, v.Int = tree.Int, int64(t)
		}
	case string:
		v.Kind, v.Str = tree.String, t
	case []any:
		v.Kind = tree.Array
		for _, it := range t {
			v.Items = append(v.Items, mk(src, it))
		}
	case map[string]any:
		v.Kind = tree.Map
		for _, k := range sortedKeys(t) {
			v.Fields = append(v.Fields, tree.Field{Key: k, Value: mk(src, t[k])})
		}
	}
	return v
}
