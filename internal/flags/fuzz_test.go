package flags

import (
	"encoding/json"
	"testing"
)

// FuzzCompile feeds random targeting rules and flag files to the parser and
// compiler: they must never panic, and a flag with problems must evaluate
// to PARSE_ERROR.
func FuzzCompile(f *testing.F) {
	f.Add(`{"if": [{"==": [{"var": "a"}, 1]}, "x", "y"]}`)
	f.Add(`{"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "u"}]}, ["x", 50], ["y", 50]]}`)
	f.Add(`{"sem_ver": [{"var": "v"}, "^", "1.2"]}`)
	f.Add(`{"some": [{"var": "l"}, {"in": [{"var": ""}, ["x"]]}]}`)
	f.Add(`{"reduce": [{"var": "l"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}`)
	f.Add(`{"$ref": "e"}`)
	f.Fuzz(func(t *testing.T, rule string) {
		src := `{"flags": {"k": {"state": "ENABLED", "variants": {"x": "x", "y": "y"}, "defaultVariant": "y", "targeting": ` + rule + `}},
		  "$evaluators": {"e": {"==": [{"var": "a"}, 1]}}}`
		d := Parse(File{Name: "f.json", Data: []byte(src)})
		r := d.Set("").Evaluate("k", String, "dflt", map[string]any{"a": 1.0, "l": []any{1.0, "x"}, "targetingKey": "t"})
		if len(d.Problems()) > 0 && r.ErrorCode == "" {
			t.Fatalf("flag with problems %v evaluated to %+v", d.Problems(), r)
		}
		if r.ErrorCode != "" && r.Value != "dflt" {
			t.Fatalf("error result without the caller's default: %+v", r)
		}
	})
}

// FuzzEvaluate evaluates fixed rules over random contexts (JSON): no
// panics, and every result is a variant, the default, or an error with the
// caller's default.
func FuzzEvaluate(f *testing.F) {
	src := `{"flags": {
	  "a": {"state": "ENABLED", "variants": {"x": "x", "y": "y"}, "defaultVariant": "y",
	    "targeting": {"if": [{"and": [{"==": [{"var": "p"}, "pro"]}, {">=": [{"var": "n"}, 18]}, {"in": [{"var": "c"}, ["FR", "NL"]]}]}, "x", null]}},
	  "b": {"state": "ENABLED", "variants": {"x": "x", "y": "y"}, "defaultVariant": "y",
	    "targeting": {"fractional": [{"var": "u.id"}, ["x", 1], ["y", 3]]}},
	  "c": {"state": "ENABLED", "variants": {"x": "x", "y": "y"}, "defaultVariant": "y",
	    "targeting": {"if": [{"sem_ver": [{"var": "v"}, ">=", "1.2.0"]}, "x", {"cat": [{"var": "p"}, {"substr": [{"var": "c"}, 1]}]}]}},
	  "d": {"state": "ENABLED", "variants": {"x": "x", "y": "y"}, "defaultVariant": "y",
	    "targeting": {"if": [{"some": [{"var": "l"}, {"<": [{"+": [{"var": ""}, 1]}, 3]}]}, "x", "y"]}}
	}}`
	d := Parse(File{Name: "f.json", Data: []byte(src)})
	if p := d.Problems(); len(p) > 0 {
		f.Fatal(p)
	}
	s := d.Set("")
	f.Add(`{"p": "pro", "n": 20, "c": "NL", "targetingKey": "u1"}`)
	f.Add(`{"u": {"id": "abc"}, "v": "1.3.0", "l": [1, "2", null]}`)
	f.Add(`{"p": 1, "n": "x", "c": [1], "v": 2, "l": {}}`)
	f.Fuzz(func(t *testing.T, ctxJSON string) {
		var ctx map[string]any
		if json.Unmarshal([]byte(ctxJSON), &ctx) != nil {
			return
		}
		for _, k := range s.Keys() {
			r := s.Evaluate(k, String, "dflt", ctx)
			switch {
			case r.ErrorCode != "" && r.Value != "dflt":
				t.Fatalf("%s: error without the default: %+v", k, r)
			case r.ErrorCode == "" && r.Value != r.Variant:
				t.Fatalf("%s: value %v is not variant %q's", k, r.Value, r.Variant)
			}
		}
	})
}
