package tree_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/tree"
)

type parsed struct {
	Data   any
	Errors []string
}

func parse(format tree.Format, src string) parsed {
	var v *tree.Value
	var errs []string
	switch format {
	case tree.FormatYAML:
		t, l := tree.ParseYAML("f.yaml", []byte(src))
		v = t
		for _, d := range l {
			errs = append(errs, d.Error())
		}
	case tree.FormatJSON:
		t, l := tree.ParseJSON("f.json", []byte(src))
		v = t
		for _, d := range l {
			errs = append(errs, d.Error())
		}
	}
	p := parsed{Errors: errs}
	if v != nil {
		p.Data = v.Interface()
	}
	return p
}

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		format tree.Format
		src    string
		want   parsed
	}{
		{"yaml scalars", tree.FormatYAML, "i: 0x1F\nf: 1.5\ninf: .inf\nb: true\ns: 'x'\nn: ~\nt: 2024-01-01\nyes: yes\n",
			parsed{Data: map[string]any{"i": int64(31), "f": 1.5, "inf": inf(), "b": true, "s": "x", "n": nil, "t": "2024-01-01", "yes": "yes"}}},
		{"yaml anchors and merge keys", tree.FormatYAML, "base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n",
			parsed{Data: map[string]any{"base": map[string]any{"x": int64(1), "y": int64(2)}, "child": map[string]any{"x": int64(1), "y": int64(3)}}}},
		{"yaml empty file", tree.FormatYAML, "", parsed{Data: map[string]any{}}},
		{"yaml comment-only file", tree.FormatYAML, "# nothing\n", parsed{Data: map[string]any{}}},
		{"yaml top-level list", tree.FormatYAML, "- a\n", parsed{Errors: []string{"f.yaml:1:1: expected a mapping at the top of the file, found array"}}},
		{"yaml duplicate key", tree.FormatYAML, "a: 1\nb:\n  c: 1\n  c: 2\n", parsed{Errors: []string{`f.yaml:4:3: key "c" is defined twice in this mapping`}}},
		{"yaml two documents", tree.FormatYAML, "a: 1\n---\nb: 2\n", parsed{Errors: []string{"f.yaml:2:1: a configuration file holds one YAML document; found a second one"}}},
		{"yaml syntax error", tree.FormatYAML, "a: 1\nb: [\n", parsed{Errors: []string{"f.yaml:2:1: invalid YAML: did not find expected node content"}}},
		{"yaml alias bomb", tree.FormatYAML, aliasBomb(9), parsed{Errors: []string{"f.yaml:5:45: aliases expand to more than 100000 values"}}},
		// yaml.v3 ends the document at a line indented less than the first and
		// used to drop the rest of the file silently.
		{"yaml text after the document", tree.FormatYAML, " 0:\n0", parsed{Errors: []string{"f.yaml:2:1: invalid YAML: did not find expected <document start>"}}},
		{"yaml dedented key", tree.FormatYAML, "  server:\n    port: 8080\ndatabase: x\n", parsed{Errors: []string{"f.yaml:3:1: invalid YAML: did not find expected <document start>"}}},
		{"yaml invalid second document", tree.FormatYAML, "a: 1\n---\nb: [\n", parsed{Errors: []string{"f.yaml:3:1: invalid YAML: did not find expected node content"}}},
		{"json comments and trailing commas", tree.FormatJSON, "// c\n{\n  /* x */ \"a\": [1, 2,],\n  \"b\": 1e3,\n}\n",
			parsed{Data: map[string]any{"a": []any{int64(1), int64(2)}, "b": 1000.0}}},
		{"json syntax error position", tree.FormatJSON, "{\n  \"a\": tru\n}", parsed{Errors: []string{"f.json:2:8: invalid JSON: invalid literal: tru"}}},
		{"json duplicate key", tree.FormatJSON, "{\"a\": 1,\n \"a\": 2}", parsed{Errors: []string{`f.json:2:2: key "a" is defined twice in this object`}}},
		{"json top-level array", tree.FormatJSON, "[1]", parsed{Errors: []string{"f.json:1:1: expected an object at the top of the file, found array"}}},

		// Integers above int64 stay exact; beyond uint64 they are refused.
		{"yaml uint64", tree.FormatYAML, "max: 18446744073709551615\nbig: 9223372036854775808\nhex: 0xFFFFFFFFFFFFFFFF\n",
			parsed{Data: map[string]any{"max": uint64(18446744073709551615), "big": uint64(9223372036854775808), "hex": uint64(18446744073709551615)}}},
		{"yaml integer beyond 64 bits", tree.FormatYAML, "a: 18446744073709551616\nb: -9223372036854775809\nc: \"18446744073709551616\"\nd: !!float 18446744073709551616\n",
			parsed{Errors: []string{
				"f.yaml:1:4: integer of 20 digits does not fit in 64 bits; write it in quotes to keep it as text",
				"f.yaml:2:4: integer of 19 digits does not fit in 64 bits; write it in quotes to keep it as text",
			}}},
		{"json uint64", tree.FormatJSON, `{"max": 18446744073709551615, "min": -9223372036854775808}`,
			parsed{Data: map[string]any{"max": uint64(18446744073709551615), "min": int64(-9223372036854775808)}}},
		{"json integer beyond 64 bits", tree.FormatJSON, "{\"a\": 18446744073709551616,\n \"b\": -9223372036854775809, \"c\": 1e30}",
			parsed{Errors: []string{
				"f.json:1:7: integer of 20 digits does not fit in 64 bits; write it in quotes to keep it as text",
				"f.json:2:7: integer of 19 digits does not fit in 64 bits; write it in quotes to keep it as text",
			}}},

		// Text must be UTF-8; the UTF-8 byte order mark is fine.
		{"yaml invalid UTF-8", tree.FormatYAML, "a: ok\nb: \"é\xe9\"\nc: \xff\n",
			parsed{Errors: []string{"f.yaml:2:6: invalid UTF-8; save the file as UTF-8 text", "f.yaml:3:4: invalid UTF-8; save the file as UTF-8 text"}}},
		{"json invalid UTF-8", tree.FormatJSON, "{\"a\": \"é\xe9\"}", parsed{Errors: []string{"f.json:1:10: invalid UTF-8; save the file as UTF-8 text"}}},
		{"json invalid UTF-8 in a comment", tree.FormatJSON, "{} // \xff", parsed{Errors: []string{"f.json:1:7: invalid UTF-8; save the file as UTF-8 text"}}},
		{"many lines of invalid UTF-8", tree.FormatJSON, strings.Repeat("\xff\n", 12), parsed{Errors: []string{
			"f.json:1:1: invalid UTF-8; save the file as UTF-8 text", "f.json:2:1: invalid UTF-8; save the file as UTF-8 text",
			"f.json:3:1: invalid UTF-8; save the file as UTF-8 text", "f.json:4:1: invalid UTF-8; save the file as UTF-8 text",
			"f.json:5:1: invalid UTF-8; save the file as UTF-8 text", "f.json:6:1: invalid UTF-8; save the file as UTF-8 text",
			"f.json:7:1: invalid UTF-8; save the file as UTF-8 text", "f.json:8:1: invalid UTF-8; save the file as UTF-8 text",
			"f.json:9:1: invalid UTF-8; save the file as UTF-8 text",
			"f.json:10:1: invalid UTF-8 here and on 2 more lines; save the file as UTF-8 text",
		}}},
		{"yaml UTF-16", tree.FormatYAML, "\xff\xfea\x00:\x00 \x001\x00", parsed{Errors: []string{"f.yaml:1:1: UTF-16 is not supported; save the file as UTF-8"}}},
		{"json UTF-16 big endian", tree.FormatJSON, "\xfe\xff\x00{\x00}", parsed{Errors: []string{"f.json:1:1: UTF-16 is not supported; save the file as UTF-8"}}},
		{"json UTF-8 byte order mark", tree.FormatJSON, "\uFEFF{\"a\": x}", parsed{Errors: []string{"f.json:1:7: invalid JSON: invalid literal: x"}}},
		{"yaml UTF-8 byte order mark", tree.FormatYAML, "\uFEFFa: 1\n", parsed{Data: map[string]any{"a": int64(1)}}},
		{"json brackets in strings and comments do not count", tree.FormatJSON,
			`{"a": "` + strings.Repeat("[", 300) + `", /* ` + strings.Repeat("{", 300) + " */ // " + strings.Repeat("[", 300) + "\n}",
			parsed{Data: map[string]any{"a": strings.Repeat("[", 300)}}},

		// Aliases: bounded by values and by bytes.
		{"yaml alias of its own anchor", tree.FormatYAML, "a: &a [1, *a]\n", parsed{Errors: []string{"f.yaml:1:11: alias *a is inside the value of its own anchor"}}},
		{"yaml alias byte bomb", tree.FormatYAML, byteBomb(), parsed{Errors: []string{"f.yaml:3:8: aliases expand to more than 16 MiB of keys and values"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, parse(tt.format, tt.src)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// aliasBomb is a "billion laughs" document: l0 is a list of ten strings and
// each further line a list of ten aliases of the line above, 10^(levels+1)
// strings in all.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= levels; i++ {
		alias := "*l" + strconv.Itoa(i-1)
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, strings.Join(slices.Repeat([]string{alias}, 10), ", "))
	}
	return b.String()
}

// byteBomb is the alias bomb of issue 7: a 1 MiB string, nine aliases of it,
// nine of those and nine of those, 819 MiB in all in a few lines.
func byteBomb() string {
	return "a: &a \"" + strings.Repeat("x", 1<<20) + "\"\n" +
		"b: &b [" + strings.Repeat("*a, ", 8) + "*a]\n" +
		"c: &c [" + strings.Repeat("*b, ", 8) + "*b]\n" +
		"d: [" + strings.Repeat("*c, ", 8) + "*c]\n"
}

// nest wraps an empty collection in n-1 more: n levels.
func nest(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

// depth is the number of levels of maps and arrays in v.
func depth(v *tree.Value) int {
	d := 0
	for _, f := range v.Fields {
		d = max(d, depth(f.Value))
	}
	for _, it := range v.Items {
		d = max(d, depth(it))
	}
	if v.Kind == tree.Map || v.Kind == tree.Array {
		d++
	}
	return d
}

// TestNestingLimit: 200 levels of maps and arrays pass (the top-level map is
// one), 201 do not, in every syntax.
func TestNestingLimit(t *testing.T) {
	tests := []struct {
		name   string
		format tree.Format
		src    string
		want   []string // errors; none means the file parses to 200 levels
	}{
		{"yaml flow 200", tree.FormatYAML, "a: " + nest("[", "]", 199), nil},
		{"yaml flow 201", tree.FormatYAML, "a: " + nest("[", "]", 200), []string{"f.yaml:1:203: nesting deeper than 200 levels"}},
		{"yaml block 200", tree.FormatYAML, "a:\n" + strings.Repeat("- ", 199) + "x", nil},
		{"yaml block 201", tree.FormatYAML, "a:\n" + strings.Repeat("- ", 200) + "x", []string{"f.yaml:2:399: nesting deeper than 200 levels"}},
		{"yaml aliases 201", tree.FormatYAML, "a: &a " + nest("[", "]", 199) + "\nb: [*a]\n", []string{"f.yaml:2:5: nesting deeper than 200 levels"}},
		{"json 200", tree.FormatJSON, `{"a": ` + nest("[", "]", 199) + "}", nil},
		{"json 201", tree.FormatJSON, `{"a": ` + nest("[", "]", 200) + "}", []string{"f.json:1:206: nesting deeper than 200 levels"}},
		{"json objects 201", tree.FormatJSON, strings.Repeat(`{"a":`, 201) + "1" + strings.Repeat("}", 201), []string{"f.json:1:1001: nesting deeper than 200 levels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parse(tt.format, tt.src)
			if diff := cmp.Diff(tt.want, got.Errors); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tt.want != nil {
				return
			}
			var v *tree.Value
			if tt.format == tree.FormatYAML {
				v, _ = tree.ParseYAML("f.yaml", []byte(tt.src))
			} else {
				v, _ = tree.ParseJSON("f.json", []byte(tt.src))
			}
			if d := depth(v); d != tree.MaxDepth {
				t.Errorf("parsed to %d levels, want %d", d, tree.MaxDepth)
			}
		})
	}
}

// TestDeepInput feeds each parser a million levels: it must fail fast with
// the place the limit was crossed, not overflow the stack.
func TestDeepInput(t *testing.T) {
	const n = 1_000_000
	tests := []struct {
		name   string
		format tree.Format
		src    string
		want   string
	}{
		{"json arrays", tree.FormatJSON, strings.Repeat("[", n), "f.json:1:201: nesting deeper than 200 levels"},
		{"json objects", tree.FormatJSON, "{" + strings.Repeat(`"a":{`, n), "f.json:1:1001: nesting deeper than 200 levels"},
		{"json arrays on lines", tree.FormatJSON, "{\"a\":\n" + strings.Repeat("[\n", n), "f.json:201:1: nesting deeper than 200 levels"},
		{"json closed", tree.FormatJSON, nest("[", "]", n), "f.json:1:201: nesting deeper than 200 levels"},
		{"yaml flow sequences", tree.FormatYAML, "a: " + strings.Repeat("[", n), "f.yaml:1:203: nesting deeper than 200 levels"},
		{"yaml flow mappings", tree.FormatYAML, "a: " + strings.Repeat("{a: ", n), "f.yaml:1:800: nesting deeper than 200 levels"},
		{"yaml flow on lines", tree.FormatYAML, "a:\n" + strings.Repeat(" [\n", n), "f.yaml:201:2: nesting deeper than 200 levels"},
		{"yaml closed flow", tree.FormatYAML, "a: " + nest("[", "]", n), "f.yaml:1:203: nesting deeper than 200 levels"},
		// yaml.v3 gives no column for nesting it refuses itself.
		{"yaml block sequences", tree.FormatYAML, "- " + strings.Repeat("- ", n) + "x", "f.yaml:1:1: nesting deeper than 200 levels"},
		{"yaml block sequence in a map", tree.FormatYAML, "a:\n" + strings.Repeat("- ", n) + "x", "f.yaml:2:1: nesting deeper than 200 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got := parse(tt.format, tt.src)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if diff := cmp.Diff(parsed{Errors: []string{tt.want}}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPositions(t *testing.T) {
	v, errs := tree.ParseYAML("f.yaml", []byte("server:\n  port: 8080\n  host: \"x\"\n"))
	if errs != nil {
		t.Fatal(errs)
	}
	port := v.Lookup([]string{"server", "port"})
	host := v.Lookup([]string{"server", "host"})
	got := []any{port.Src.Line, port.Src.Column, host.Src.Line, host.Src.Column, host.Quoted}
	if diff := cmp.Diff([]any{2, 9, 3, 9, true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	j, errs := tree.ParseJSON("f.json", []byte("{\n\t\"a\": {\"b\": 1}\n}"))
	if errs != nil {
		t.Fatal(errs)
	}
	b := j.Lookup([]string{"a", "b"})
	if b.Src.Line != 2 || b.Src.Column != 13 {
		t.Errorf("a.b at %d:%d, want 2:13", b.Src.Line, b.Src.Column)
	}
}

// TestPositionsAtEndOfInput covers empty nodes that yaml.v3 places on a line
// past the end of an input whose last line has no line break (found by
// FuzzParseYAML): they point at the end of the last line instead.
func TestPositionsAtEndOfInput(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		path      []string
		line, col int
	}{
		{"explicit key without value", "?", []string{""}, 1, 2},
		{"nested explicit key", "a:\n  ? b", []string{"a", "b"}, 2, 6},
		{"bare document start", "---", nil, 1, 4},
		{"carriage returns", "a: 1\r? b", []string{"b"}, 2, 4},
		{"trailing blanks", "? b\n  ", []string{"b"}, 2, 3},
		{"final line break", "? b\n", []string{"b"}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, errs := tree.ParseYAML("f.yaml", []byte(tt.src))
			if errs != nil {
				t.Fatal(errs)
			}
			got := v.Lookup(tt.path)
			if got == nil {
				t.Fatalf("no value at %q", tt.path)
			}
			if got.Src.Line != tt.line || got.Src.Column != tt.col {
				t.Errorf("value at %q is at %d:%d, want %d:%d", tt.path, got.Src.Line, got.Src.Column, tt.line, tt.col)
			}
		})
	}
}

// AppendJSON writes JSON that encoding/json reads back as the same
// values — keys with control characters included, which Go's %q quoting
// (used before) would have written as "\a", not JSON.
func TestAppendJSON(t *testing.T) {
	v, errs := tree.ParseJSON("t.json", []byte(`{"b\u0007ell":[1,2.5,true,null,"x\"y"],"big":18446744073709551615,"é":{}}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := string(tree.AppendJSON(nil, v))
	want := `{"b\u0007ell":[1,2.5,true,null,"x\"y"],"big":18446744073709551615,"é":{}}`
	if got != want {
		t.Errorf("AppendJSON = %s\nwant          %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
	nan := &tree.Value{Kind: tree.Map, Fields: []tree.Field{{Key: "n", Value: &tree.Value{Kind: tree.Float, Float: math.NaN()}}}}
	if got := string(tree.AppendJSON(nil, nan)); got != `{"n":null}` {
		t.Errorf("NaN: %s", got)
	}
}
