package flags

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithOverride(t *testing.T) {
	d := Parse(File{Name: "f.yaml", Data: []byte(`flags:
  color:
    state: ENABLED
    variants: {red: "#f00", blue: "#00f"}
    defaultVariant: red
  broken:
    state: ENABLED
    variants: {a: 1}
    defaultVariant: b
  dark_mode:
    default: false
    rollout: {type: user_attribute, attribute: beta_tester}
`)})
	base := d.Set("production")
	str := func(s string) *string { return &s }
	type out struct {
		Value   any
		Variant string
		Reason  Reason
		Fields  []string
	}
	cases := []struct {
		name string
		key  string
		o    Override
		ctx  map[string]any
		want out
	}{
		{"default variant", "color", Override{DefaultVariant: str("blue")}, nil, out{"#00f", "blue", ReasonStatic, nil}},
		{"disabled", "color", Override{State: str("DISABLED")}, nil, out{"def", "", ReasonDisabled, nil}},
		{"targeting", "color", Override{Targeting: json.RawMessage(`{"if":[{"==":[{"var":"plan"},"pro"]},"blue",null]}`)},
			map[string]any{"plan": "pro"}, out{"#00f", "blue", ReasonTargetingMatch, nil}},
		{"targeting removed from a shorthand flag", "dark_mode", Override{Targeting: json.RawMessage(`{}`), DefaultVariant: str("on")},
			map[string]any{"beta_tester": false}, out{true, "on", ReasonStatic, nil}},
		{"bad state and variant", "color", Override{State: str("ON"), DefaultVariant: str("green")}, nil, out{Fields: []string{"state", "defaultVariant"}}},
		{"targeting not JSON", "color", Override{Targeting: json.RawMessage(`{"if":`)}, nil, out{Fields: []string{"targeting"}}},
		{"targeting not a rule", "color", Override{Targeting: json.RawMessage(`[1]`)}, nil, out{Fields: []string{"targeting"}}},
		{"unknown operator", "color", Override{Targeting: json.RawMessage(`{"nope":[1]}`)}, nil, out{Fields: []string{"targeting"}}},
		{"targeting answering an unknown variant", "color", Override{Targeting: json.RawMessage(`{"if":[true,"shout",{"if":[false,"blue","green"]}]}`)},
			nil, out{Fields: []string{"targeting", "targeting"}}},
		{"fractional bucket naming an unknown variant", "color", Override{Targeting: json.RawMessage(`{"fractional":[["red",50],["pink",50]]}`)},
			nil, out{Fields: []string{"targeting"}}},
		{"computed and null outcomes are the evaluator's", "color", Override{Targeting: json.RawMessage(`{"if":[{"var":"x"},{"var":"v"},null]}`)},
			nil, out{"#f00", "red", ReasonDefault, nil}},
		{"no such flag", "nope", Override{State: str("DISABLED")}, nil, out{Fields: []string{"key"}}},
		{"a flag that did not load", "broken", Override{State: str("DISABLED")}, nil, out{Fields: []string{"key"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, problems := base.WithOverride(c.key, c.o)
			var got out
			for _, p := range problems {
				got.Fields = append(got.Fields, p.Field)
			}
			if s != nil {
				def := any("def")
				if c.key == "dark_mode" {
					def = false
				}
				r := s.Evaluate(c.key, Any, def, c.ctx)
				got.Value, got.Variant, got.Reason = r.Value, r.Variant, r.Reason
				if s.Digest() == base.Digest() {
					t.Error("the digest did not change")
				}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// The base set is unchanged.
	if r := base.Evaluate("color", Any, nil, nil); r.Variant != "red" {
		t.Errorf("base changed: %+v", r)
	}
}
