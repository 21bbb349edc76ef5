package flags

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFastPathsMatchGeneral checks the specialised nodes (a context key
// compared with a constant, in over constant strings, and/or/if of
// comparisons) against the same rules written so that they take the
// general path, for context values of every kind.
func TestFastPathsMatchGeneral(t *testing.T) {
	pairs := [][2]string{ // fast, general
		{`{"==": [{"var": "x"}, "pro"]}`, `{"==": ["pro", {"var": "x"}]}`},
		{`{"===": [{"var": "x"}, "pro"]}`, `{"===": ["pro", {"var": "x"}]}`},
		{`{"!=": [{"var": "x"}, "pro"]}`, `{"!=": ["pro", {"var": "x"}]}`},
		{`{"!==": [{"var": "x"}, "pro"]}`, `{"!==": ["pro", {"var": "x"}]}`},
		{`{"==": [{"var": "x"}, 18]}`, `{"==": [18, {"var": "x"}]}`},
		{`{"===": [{"var": "x"}, 18]}`, `{"===": [18, {"var": "x"}]}`},
		{`{"!=": [{"var": "x"}, 18]}`, `{"!=": [18, {"var": "x"}]}`},
		{`{"!==": [{"var": "x"}, 18]}`, `{"!==": [18, {"var": "x"}]}`},
		{`{">=": [{"var": "x"}, 18]}`, `{"<=": [18, {"var": "x"}]}`},
		{`{">": [{"var": "x"}, 18]}`, `{"<": [18, {"var": "x"}]}`},
		{`{"<=": [{"var": "x"}, 18]}`, `{">=": [18, {"var": "x"}]}`},
		{`{"<": [{"var": "x"}, 18]}`, `{">": [18, {"var": "x"}]}`},
		{`{"<": [{"var": "x"}, "m"]}`, `{">": ["m", {"var": "x"}]}`},
		{`{"in": [{"var": "x"}, ["FR", "pro", "18"]]}`, `{"in": [{"var": "x"}, {"merge": [["FR", "pro", "18"]]}]}`},
		{`{"in": [{"var": "x"}, ["a","b","c","d","e","f","g","h","pro"]]}`, `{"in": [{"var": "x"}, {"merge": [["a","b","c","d","e","f","g","h","pro"]]}]}`},
		{`{"==": [{"var": "$flagd"}, "pro"]}`, `{"==": ["pro", {"var": "$flagd"}]}`},
		{`{"==": [{"var": "u.x"}, "pro"]}`, `{"==": ["pro", {"var": "u.x"}]}`},
		{`{"starts_with": [{"var": "x"}, "pr"]}`, `{"starts_with": [{"var": "x"}, {"cat": "pr"}]}`},
		{`{"ends_with": [{"var": "u.x"}, "ro"]}`, `{"ends_with": [{"var": "u.x"}, {"cat": "ro"}]}`},
		{`{"and": [{"ends_with": [{"var": "x"}, "ro"]}, {"==": [{"var": "x"}, "pro"]}]}`, `{"and": [{"ends_with": [{"var": "x"}, {"cat": "ro"}]}, {"==": ["pro", {"var": "x"}]}]}`},
		{`{">=": [{"var": "u.x"}, 18]}`, `{"<=": [18, {"var": "u.x"}]}`},
		{`{"in": [{"var": "u.x"}, ["FR", "pro", "18"]]}`, `{"in": [{"var": "u.x"}, {"merge": [["FR", "pro", "18"]]}]}`},
		{`{"==": [{"var": "u.0"}, "pro"]}`, `{"==": ["pro", {"var": "u.0"}]}`},
		{`{"==": [{"var": "$flagd.x"}, "pro"]}`, `{"==": ["pro", {"var": "$flagd.x"}]}`},
		{`{"==": [{"var": "$flagd.flagKey"}, "f15_0"]}`, `{"==": ["f15_0", {"var": "$flagd.flagKey"}]}`},
		{`{"and": [{"==": [{"var": "x"}, "pro"]}, {"!=": [{"var": "x"}, 1]}]}`, `{"and": [{"==": ["pro", {"var": "x"}]}, {"!=": [1, {"var": "x"}]}]}`},
		{`{"or": [{"==": [{"var": "x"}, "pro"]}, {">": [{"var": "x"}, 1]}, {"<": [{"var": "x"}, -1]}]}`, `{"or": [{"==": ["pro", {"var": "x"}]}, {"<": [1, {"var": "x"}]}, {">": [-1, {"var": "x"}]}]}`},
		{`{"and": [{"==": [{"var": "x"}, "pro"]}, {"var": "x"}]}`, `{"and": [{"==": ["pro", {"var": "x"}]}, {"var": "x"}]}`},
		{`{"some": [["pro", 18, true], {"==": [{"var": ""}, "pro"]}]}`, `{"some": [["pro", 18, true], {"==": ["pro", {"var": ""}]}]}`},
		{`{"some": [[{"x": "pro"}, {"x": 3}], {"==": [{"var": "x"}, "pro"]}]}`, `{"some": [[{"x": "pro"}, {"x": 3}], {"==": ["pro", {"var": "x"}]}]}`},
	}
	values := []any{nil, "pro", "Pro", "", "18", " 18 ", "abc", "m", "z", 18.0, 17.0, 19.5, -2.0, 18, int64(18), int32(3), uint8(18), float32(18),
		true, false, json.Number("18"), json.Number("x"), []any{"pro"}, []any{}, map[string]any{"a": 1.0}, []string{"pro"}, struct{}{}}
	var b strings.Builder
	b.WriteString(`{"flags": {`)
	for i, p := range pairs {
		for j, rule := range p {
			if i+j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"f%d_%d": {"state": "ENABLED", "variants": {"true": 1, "false": 0, "pro": 2}, "defaultVariant": "false", "targeting": {"if": [%s, "true", "false"]}},`, i, j, rule)
			fmt.Fprintf(&b, `"v%d_%d": {"state": "ENABLED", "variants": {"true": 1, "false": 0, "pro": 2}, "defaultVariant": "false", "targeting": %s}`, i, j, rule)
		}
	}
	b.WriteString(`}}`)
	d := Parse(File{Name: "fast.json", Data: []byte(b.String())})
	if p := d.Problems(); len(p) > 0 {
		t.Fatal(p)
	}
	s := d.Set("")
	ctxs := []map[string]any{nil, {}, {"$flagd": map[string]any{"x": 1.0}}}
	for _, v := range values {
		ctxs = append(ctxs, map[string]any{"x": v, "$flagd": v, "u": v},
			map[string]any{"u": map[string]any{"x": v}, "$flagd": map[string]any{"x": v}},
			map[string]any{"u": []any{v}})
	}
	for i, p := range pairs {
		for _, ctx := range ctxs {
			for _, f := range []string{"f", "v"} {
				fast := s.Evaluate(fmt.Sprintf("%s%d_0", f, i), Any, "def", ctx)
				gen := s.Evaluate(fmt.Sprintf("%s%d_1", f, i), Any, "def", ctx)
				fast.Key, gen.Key = "", ""
				if diff := cmp.Diff(gen, fast); diff != "" {
					t.Errorf("%s with %#v (-general +fast):\n%s", p[0], ctx, diff)
				}
			}
		}
	}
}
