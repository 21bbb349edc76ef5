package tree_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

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
