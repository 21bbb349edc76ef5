package flags

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func arka(t testing.TB) *Document {
	t.Helper()
	data, err := os.ReadFile("../../examples/arka/config/feature-flags.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Parse(File{Name: "config/feature-flags.yaml", Data: data})
	if p := d.Problems(); len(p) > 0 {
		t.Fatalf("problems in the ARKA flags: %v", p)
	}
	return d
}

func TestShorthandARKA(t *testing.T) {
	d := arka(t)
	type row struct {
		Env, Key string
		Ctx      map[string]any
		Value    any
		Variant  string
		Reason   Reason
	}
	beta := map[string]any{"targetingKey": "u1", "beta_tester": true}
	tests := []row{
		{"development", "new_rule_engine", nil, true, "on", ReasonStatic},
		{"production", "new_rule_engine", map[string]any{"targetingKey": "u1"}, false, "off", ReasonTargetingMatch}, // 0% rollout
		{"production", "ai_explanations", nil, true, "on", ReasonStatic},
		{"development", "blockchain_anchoring", nil, false, "off", ReasonStatic},
		{"qa", "blockchain_anchoring", nil, true, "on", ReasonStatic}, // not listed: default
		{"production", "dark_mode", beta, true, "on", ReasonTargetingMatch},
		{"production", "dark_mode", map[string]any{"beta_tester": "true"}, false, "off", ReasonDefault},
		{"production", "dark_mode", nil, false, "off", ReasonDefault},
		{"production", "ai_rule_suggestions", nil, false, "off", ReasonDefault}, // no targeting key: no bucket
		{"staging", "dark_mode", nil, true, "on", ReasonStatic},
	}
	for _, tt := range tests {
		r := d.Set(tt.Env).Evaluate(tt.Key, Boolean, nil, tt.Ctx)
		got := row{tt.Env, tt.Key, tt.Ctx, r.Value, r.Variant, r.Reason}
		if diff := cmp.Diff(tt, got); diff != "" || r.ErrorCode != "" {
			t.Errorf("%s %s (-want +got):\n%s %s", tt.Env, tt.Key, diff, r.ErrorMessage)
		}
	}
	// 10% of users get ai_rule_suggestions in production, the same users as under flagd.
	on := 0
	s := d.Set("production")
	for i := 0; i < 10000; i++ {
		if s.Evaluate("ai_rule_suggestions", Boolean, false, map[string]any{"targetingKey": "user-" + strconv.Itoa(i)}).Value == true {
			on++
		}
	}
	if on < 900 || on > 1100 {
		t.Errorf("ai_rule_suggestions on for %d of 10000 users, want about 1000", on)
	}
}

func TestProblems(t *testing.T) {
	src := `
flags:
  mixed:
    state: ENABLED
    variants: {a: 1, b: "x"}
    defaultVariant: c
  badop:
    state: ENABLED
    variants: {on: true, off: false}
    defaultVariant: "off"
    targeting: {"iff": [true, "on"]}
  loop:
    state: ENABLED
    variants: {on: true, off: false}
    defaultVariant: "off"
    targeting: {"$ref": "a"}
  fine:
    state: ENABLED
    variants: {on: true, off: false}
    defaultVariant: "on"
  short:
    default: maybe
    rollout: {type: percent}
$evaluators:
  a: {"$ref": "b"}
  b: {"$ref": "a"}
`
	d := Parse(File{Name: "f.yaml", Data: []byte(src)})
	var got []string
	for _, p := range d.Problems() {
		got = append(got, p.Error())
	}
	want := []string{
		`f.yaml:5:25: flag mixed: variants: variants of mixed types: "b" is string but "a" is integer`,
		`f.yaml:6:21: flag mixed: defaultVariant: "c" is not a variant (variants: a, b)`,
		`f.yaml:11:16: flag badop: targeting: unknown operator "iff"; did you mean "if"? (supported: ! !! != !== % * + - / < <= == === > >= ?: abs all and cat ends_with filter fractional if in map max merge min missing missing_some none or reduce sem_ver some starts_with substr var)`,
		`f.yaml:22:14: flag short: default: expected true or false, found "maybe"`,
		`f.yaml:23:21: flag short: rollout.type: expected percentage or user_attribute, found "percent"`,
		`f.yaml:26:15: flag loop: targeting: $ref cycle: a -> b -> a`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	s := d.Set("")
	for key, want := range map[string]ErrorCode{"mixed": ErrParse, "badop": ErrParse, "loop": ErrParse, "short": ErrParse, "fine": "", "nope": ErrFlagNotFound} {
		r := s.Evaluate(key, Boolean, false, nil)
		if r.ErrorCode != want {
			t.Errorf("%s: error code %q, want %q (%+v)", key, r.ErrorCode, want, r)
		}
	}
}

func TestGarbageFile(t *testing.T) {
	d := Parse(File{Name: "f.yaml", Data: []byte("]]] not yaml {{")})
	if len(d.Problems()) == 0 {
		t.Fatal("garbage parsed without a problem")
	}
	d = Parse(File{Name: "f.yaml", Data: []byte("hello: world\n")})
	if len(d.Problems()) == 0 {
		t.Fatal("a file without flags parsed without a problem")
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	src := `{"flags": {"color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red",
	  "environments": {"production": {"defaultVariant": "blue"}, "staging": {"state": "DISABLED"}}}}}`
	d := Parse(File{Name: "f.json", Data: []byte(src)})
	if p := d.Problems(); len(p) > 0 {
		t.Fatal(p)
	}
	for env, want := range map[string]Result{
		"development": {Key: "color", Value: "red", Variant: "red", Reason: ReasonStatic},
		"production":  {Key: "color", Value: "blue", Variant: "blue", Reason: ReasonStatic},
		"staging":     {Key: "color", Value: "dflt", Reason: ReasonDisabled},
	} {
		if diff := cmp.Diff(want, d.Set(env).Evaluate("color", String, "dflt", nil)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", env, diff)
		}
	}
	var names []string
	for _, r := range d.Environments() {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"production", "staging"}, names); diff != "" {
		t.Errorf("environments (-want +got):\n%s", diff)
	}
}

func TestOverrides(t *testing.T) {
	s := arka(t).Set("production")
	env := map[string]string{"FEATURE_NEW_RULE_ENGINE": "TRUE"}
	o, err := s.WithOverrides(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Key: "new_rule_engine", Value: true, Variant: OverrideVariant, Reason: ReasonStatic}
	if diff := cmp.Diff(want, o.Evaluate("new_rule_engine", Boolean, false, nil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if r := s.Evaluate("new_rule_engine", Boolean, false, nil); r.Value != false {
		t.Errorf("the original set changed: %+v", r)
	}
	env = map[string]string{"FEATURE_DARK_MODE": "yes"}
	if _, err := s.WithOverrides(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "FEATURE_DARK_MODE=yes: expected true or false") {
		t.Errorf("err = %v", err)
	}
}

func TestOperators(t *testing.T) {
	tests := []struct {
		rule string
		ctx  map[string]any
		want string // variant, or "null", or "error:CODE"
	}{
		{`{"var": "a.b"}`, map[string]any{"a": map[string]any{"b": "x"}}, "x"},
		{`{"var": ["missing", "x"]}`, nil, "x"},
		{`{"var": "l.1"}`, map[string]any{"l": []any{"y", "x"}}, "x"},
		{`{"if": [{"<": [1, {"var": "n"}, 3]}, "x", "y"]}`, map[string]any{"n": 2}, "x"},
		{`{"if": [{"<=": [1, {"var": "n"}, 3]}, "x", "y"]}`, map[string]any{"n": 3}, "x"},
		{`{"if": [{"in": [{"var": "c"}, ["p", "x"]]}, "x", "y"]}`, map[string]any{"c": "x"}, "x"},
		{`{"if": [{"in": ["ell", "hello"]}, "x", "y"]}`, nil, "x"},
		{`{"cat": ["x", {"substr": ["abc", 5]}]}`, nil, "xabc"},
		{`{"substr": ["axyz", 1, 1]}`, nil, "x"},
		{`{"if": [{"==": [{"+": [1, 2]}, 3]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"==": [{"%": [7, 4]}, {"-": [5, 2]}]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"==": [{"max": [1, 9, 3]}, {"*": [3, 3]}]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"some": [{"var": "l"}, {"==": [{"var": ""}, 2]}]}, "x", "y"]}`, map[string]any{"l": []any{1, 2}}, "x"},
		{`{"if": [{"all": [[1, 2], {">": [{"var": ""}, 0]}]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"none": [[1, 2], {">": [{"var": ""}, 5]}]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"==": [{"reduce": [[1, 2, 3], {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, 6]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"missing": ["a", "b"]}, "y", "x"]}`, map[string]any{"a": 1, "b": 2}, "x"},
		{`{"if": [{"missing_some": [1, ["a", "b"]]}, "y", "x"]}`, map[string]any{"a": 1}, "x"},
		{`{"if": [{"!": [{"var": "f"}]}, "x", "y"]}`, map[string]any{"f": false}, "x"},
		{`{"if": [{"!!": [{"var": "f"}]}, "x", "y"]}`, map[string]any{"f": "a"}, "x"},
		{`{"if": [{"===": [1, "1"]}, "y", "x"]}`, nil, "x"},
		{`{"if": [{"==": [1, "1"]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"and": [true, {"or": [false, 1]}]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"==": [{"var": "$flagd.flagKey"}, "k"]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{">": [{"var": "$flagd.timestamp"}, 1000]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"==": [{"merge": [[1], 2]}, 0]}, "y", "x"]}`, nil, "x"},
		{`{"map": [[1], {"var": ""}]}`, nil, "[1]"},
		{`{"+": [true, 1]}`, nil, "error:PARSE_ERROR"},
		{`{"var": "c"}`, map[string]any{"c": struct{}{}}, "error:INVALID_CONTEXT"},
		{`{"var": "n"}`, map[string]any{"n": 3}, "error:GENERAL"},
		{`{"/": [1, 0]}`, nil, "error:PARSE_ERROR"},
		{`{"if": [{"sem_ver": ["1.2.3", ">=", "1.2"]}, "x", "y"]}`, nil, "x"},
		{`{"if": [{"starts_with": [{"var": "e"}, "ab"]}, "x", "y"]}`, map[string]any{"e": "abc"}, "x"},
	}
	for _, tt := range tests {
		src := `{"flags": {"k": {"state": "ENABLED", "variants": {"x": "X", "y": "Y", "xabc": "", "[1]": "", "null": ""}, "targeting": ` + tt.rule + `}}}`
		d := Parse(File{Name: "t.json", Data: []byte(src)})
		if p := d.Problems(); len(p) > 0 {
			t.Errorf("%s: %v", tt.rule, p)
			continue
		}
		s := d.Set("").WithClock(func() time.Time { return time.Unix(5000, 0) })
		r := s.Evaluate("k", Any, "dflt", tt.ctx)
		got := r.Variant
		switch {
		case r.ErrorCode != "":
			got = "error:" + string(r.ErrorCode)
		case r.Reason == ReasonDefault:
			got = "null"
		}
		if got != tt.want {
			t.Errorf("%s with %v = %s, want %s (%+v)", tt.rule, tt.ctx, got, tt.want, r)
		}
	}
}
