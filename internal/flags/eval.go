package flags

import (
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/tree"
)

// Evaluate evaluates flag key for the evaluation context ctx (JSON-like
// values; the targeting key is ctx["targetingKey"]) and returns a value of
// type typ, or def with the reason and error code flagd gives:
//
//   - no such flag: ERROR, FLAG_NOT_FOUND
//   - the flag failed to load: ERROR, PARSE_ERROR
//   - state DISABLED: DISABLED (value def, no variant)
//   - no targeting: STATIC with the default variant (DEFAULT with def when there is none)
//   - targeting returned null: DEFAULT with the default variant (or def)
//   - targeting named a variant: TARGETING_MATCH; a name that is no variant: ERROR, GENERAL
//   - targeting failed (e.g. arithmetic on a string): ERROR, PARSE_ERROR;
//     a context value JSON has no form for: ERROR, INVALID_CONTEXT
//   - the value is not of type typ: ERROR, TYPE_MISMATCH
//
// Integer values are returned as int64, Float as float64, Object as
// map[string]any; Any returns the variant's value as loaded (numbers float64).
func (s *Set) Evaluate(key string, typ Type, def any, ctx map[string]any) Result {
	f, ok := s.flags[key]
	if !ok {
		return Result{Key: key, Value: def, Reason: ReasonError, ErrorCode: ErrFlagNotFound, ErrorMessage: "flag " + key + " not found"}
	}
	if len(f.problems) > 0 {
		return f.fail(key, def, ErrParse, f.problems[0].Error())
	}
	if f.disabled {
		return Result{Key: key, Value: def, Reason: ReasonDisabled, Metadata: f.metadata}
	}
	variant, reason, value := f.defaultVariant, ReasonStatic, f.defaultValue
	if f.targeting != nil {
		st := statePool.Get().(*state)
		st.data, st.scoped, st.flagKey, st.now = ctx, false, key, s.now
		v := f.targeting(st)
		code, msg := st.code, st.msg
		st.data, st.code, st.msg, st.stack = nil, "", "", st.stack[:0]
		statePool.Put(st)
		if code != "" {
			return f.fail(key, def, code, "targeting: "+msg)
		}
		if v.k == kNull {
			reason = ReasonDefault
		} else {
			name, ok := variantName(v)
			if !ok {
				return f.fail(key, def, ErrParse, "targeting returned a number JSON cannot hold")
			}
			chosen, ok := f.variants[name]
			if !ok {
				return f.fail(key, def, ErrGeneral, fmt.Sprintf("targeting chose variant %q, which the flag does not define", name))
			}
			variant, reason, value = name, ReasonTargetingMatch, chosen
		}
	}
	if reason != ReasonTargetingMatch && !f.hasDefault {
		return Result{Key: key, Value: def, Reason: ReasonDefault, Metadata: f.metadata}
	}
	// value is f.variants[variant]: defaultValue is the default variant's.
	switch typ {
	case Boolean:
		_, ok = value.(bool)
	case String:
		_, ok = value.(string)
	case Integer:
		var n float64
		if n, ok = value.(float64); ok {
			value = int64(n)
		}
	case Float:
		_, ok = value.(float64)
	case Object:
		_, ok = value.(map[string]any)
	default:
		ok = true
	}
	if !ok {
		return f.fail(key, def, ErrTypeMismatch, fmt.Sprintf("flag %s is %s, not %s", key, f.typ, typ))
	}
	return Result{Key: key, Value: value, Variant: variant, Reason: reason, Metadata: f.metadata}
}

// fail is an evaluation of f that failed: the caller's default, ERROR.
func (f *flag) fail(key string, def any, code ErrorCode, msg string) Result {
	return Result{Key: key, Value: def, Reason: ReasonError, ErrorCode: code, ErrorMessage: msg, Metadata: f.metadata}
}

// EvaluateAll evaluates every flag as its own type (bulk OFREP).
func (s *Set) EvaluateAll(ctx map[string]any) []Result {
	out := make([]Result, len(s.keys))
	for i, k := range s.keys {
		out[i] = s.Evaluate(k, Any, nil, ctx)
	}
	return out
}

// EnvName is the variable that forces boolean flag key on or off:
// FEATURE_ and the key upper-cased, every character other than a letter
// or digit replaced by _ (new_rule_engine → FEATURE_NEW_RULE_ENGINE).
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString("FEATURE_")
	for _, r := range strings.ToUpper(key) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// OverrideVariant is the variant a forced flag reports.
const OverrideVariant = "override"

// WithOverrides returns the set with every boolean flag whose FEATURE_
// variable (EnvName) getenv returns as true or false forced to that value:
// it evaluates STATIC with variant "override" whatever the context, even
// when it is disabled or failed to load. A value other than true/false
// (any case), or a FEATURE_ variable set for a non-boolean flag, is an
// error naming the variable; the set is then returned unchanged.
func (s *Set) WithOverrides(getenv func(string) string) (*Set, error) {
	var errs []string
	forced := map[string]bool{}
	for _, k := range s.keys {
		name := EnvName(k)
		v := getenv(name)
		if v == "" {
			continue
		}
		f := s.flags[k]
		var on bool
		switch {
		case strings.EqualFold(v, "true"):
			on = true
		case strings.EqualFold(v, "false"):
		default:
			errs = append(errs, fmt.Sprintf("%s=%s: expected true or false", name, v))
			continue
		}
		if f.typ != Boolean && len(f.problems) == 0 {
			errs = append(errs, fmt.Sprintf("%s forces boolean flags only; flag %s is %s", name, k, f.typ))
			continue
		}
		forced[k] = on
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	if len(forced) == 0 {
		return s, nil
	}
	c := *s
	c.flags = maps.Clone(s.flags)
	for _, k := range s.keys {
		on, ok := forced[k]
		if !ok {
			continue
		}
		f := *s.flags[k]
		f.variants = maps.Clone(f.variants)
		if f.variants == nil {
			f.variants = map[string]any{}
		}
		f.variants[OverrideVariant] = on
		f.typ, f.disabled, f.problems, f.targeting, f.rule = Boolean, false, nil, nil, nil
		f.defaultVariant, f.hasDefault, f.defaultValue = OverrideVariant, true, on
		f.override = EnvName(k)
		c.flags[k] = &f
		c.digest += fmt.Sprintf(";%s=%t", f.override, on)
	}
	return &c, nil
}

// summarize is a targeting rule on one line, shortened.
func summarize(rule *tree.Value) string {
	if rule == nil {
		return ""
	}
	s := string(tree.AppendJSON(nil, rule))
	const max = 72
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}
