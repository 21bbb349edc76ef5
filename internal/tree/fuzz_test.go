package tree

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tailscale/hujson"
	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
)

// exampleFiles returns the contents of the files under examples/ whose names
// end in one of exts, to seed the fuzzers with real configuration.
func exampleFiles(f *testing.F, exts ...string) [][]byte {
	f.Helper()
	var out [][]byte
	root := filepath.Join("..", "..", "examples")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, ext := range exts {
			if strings.HasSuffix(p, ext) {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				out = append(out, b)
			}
		}
		return nil
	})
	if err != nil {
		f.Fatalf("reading examples: %v", err)
	}
	if len(out) == 0 {
		f.Fatalf("no %v files under %s", exts, root)
	}
	return out
}

// yamlLines splits data into lines the way yaml.v3 counts them: UTF-16 input
// (announced by a BOM) is decoded first, and CR LF, CR, LF, NEL, LS and PS all
// end a line.
func yamlLines(data []byte) []string {
	s := string(data)
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		le := data[0] == 0xFF
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if le {
				u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		s = string(utf16.Decode(u))
	}
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\r':
			lines = append(lines, s[start:i])
			if i+1 < len(s) && s[i+1] == '\n' {
				n++
			}
			start = i + n
		case '\n', '\u0085', '\u2028', '\u2029':
			lines = append(lines, s[start:i])
			start = i + n
		}
		i += n
	}
	return append(lines, s[start:])
}

// checkPositions verifies the errors or the tree of one parse. lines are the
// input's lines; columnOK says whether a column fits a line.
func checkPositions(t *testing.T, data []byte, v *Value, errs diag.List, lines []string, columnOK func(line string, col int) bool) {
	t.Helper()
	if (v == nil) == (len(errs) == 0) {
		t.Fatalf("input %q: want exactly one of a tree and errors, got tree %v and %d errors", data, v != nil, len(errs))
	}
	for _, d := range errs {
		p := d.Pos
		if p.File != "f" || p.Line < 1 || p.Column < 1 || p.Line > len(lines)+1 {
			t.Fatalf("input %q: error %q at %+v, outside %d lines", data, d.Message, p, len(lines))
		}
		if d.Message == "" {
			t.Fatalf("input %q: empty error message at %+v", data, p)
		}
	}
	if v == nil {
		return
	}
	if v.Kind != Map {
		t.Fatalf("input %q: top level is %s, want a map", data, v.Kind)
	}
	var walk func(path string, v *Value)
	walk = func(path string, v *Value) {
		s := v.Src
		if s.Kind != SourceFile || s.Name != "f" || s.Line < 1 || s.Line > len(lines) || s.Column < 1 || !columnOK(lines[s.Line-1], s.Column) {
			t.Fatalf("input %q: value at %q has source %+v, outside the input (%d lines)", data, path, s, len(lines))
		}
		if v.Kind > Uint {
			t.Fatalf("input %q: value at %q has kind %d", data, path, v.Kind)
		}
		switch v.Kind {
		case Map:
			seen := make(map[string]bool, len(v.Fields))
			for _, f := range v.Fields {
				if seen[f.Key] {
					t.Fatalf("input %q: map at %q holds key %q twice", data, path, f.Key)
				}
				seen[f.Key] = true
				walk(path+"."+f.Key, f.Value)
			}
		case Array:
			for i, it := range v.Items {
				walk(path+"["+strconv.Itoa(i)+"]", it)
			}
		}
	}
	walk("", v)
	_ = v.Interface()
}

func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"",
		"# only a comment\n",
		"server:\n  port: 8080\n  host: localhost\n",
		"a: 1\nb: [1, 2.5, true, null, ~, x]\nc: {d: e}\n",
		"base: &b\n  x: 1\n  y: 2\nderived:\n  <<: *b\n  y: 3\n",
		"a: &x [1, 2]\nb: *x\n",
		"<<: [{a: 1}, {b: 2}]\nc: 3\n",
		"s: \"quoted ${A:-x}\"\nt: 'single'\nu: |\n  block\n  text\n",
		"n: 0x1F\no: 0o17\np: 1_000\nq: .inf\nr: -.Inf\ns: .nan\nt: 1e3\nu: 99999999999999999999\n",
		"t: 2024-01-01\nb: !!binary aGVsbG8=\nc: !custom x\n",
		"a: 1\na: 2\n",
		"- 1\n- 2\n",
		"scalar",
		"a: 1\n---\nb: 2\n",
		"a: [1, 2\n",
		"a:\n\tb: 1\n",
		"? [complex]\n: key\n",
		"a: *missing\n",
		"\ufeffa: 1\r\nb: 2\r\n",
		"a: 1\rb: 2\r",
		"key: value # comment\nlist:\n  - name: x\n    value: y\n",
		"a: 18446744073709551615\nb: 18446744073709551616\nc: -9_223_372_036_854_775_809\n",
		"a: \xff\n", "\xff\xfea\x00", "a: &a [*a]\n",
		"a: " + strings.Repeat("[", 300), "a:\n" + strings.Repeat("- ", 300) + "x",
		"a: '" + strings.Repeat("[", 300) + "' # [[[\nb: \"[[\\\"[\"\n",
	} {
		f.Add([]byte(s))
	}
	for _, b := range exampleFiles(f, ".yaml", ".yml") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, errs := ParseYAML("f", data)
		checkPositions(t, data, v, errs, yamlLines(data), func(line string, col int) bool {
			// yaml.v3 counts columns in characters.
			return col <= utf8.RuneCountInString(line)+1
		})
		if v == nil {
			return
		}
		// A tree means the whole input is YAML, not just its first document.
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("ParseYAML accepted %q, which yaml.v3 rejects: %v", data, err)
			}
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		"",
		"  \n",
		"{}",
		`{"server": {"port": 8080, "host": "localhost"}}`,
		`{"a": [1, 2.5, -0, -0.0, 1e3, 1E-3, true, false, null, "x"]}`,
		"// leading comment\n{\n  \"a\": 1, /* inline */ \"b\": [1, 2,],\n}\n",
		`{"big": 9223372036854775807, "bigger": 9223372036854775808, "neg": -9223372036854775808, "huge": 123456789012345678901234567890}`,
		`{"esc": "a\"b\\c\u00e9\ud83d\ude00\n", "\u0061": 1}`,
		`{"a": 1, "a": 2}`,
		`{"a": 1, "\u0061": 2}`,
		`{"": "", "": 0}`,
		`[1, 2]`,
		`"scalar"`,
		`null`,
		`{"a": }`,
		`{"a": 1`,
		`{"a": 1} // trailing`,
		`{"a": 1} /* trailing */`,
		`{"x": 1e400}`,
		`{"a": [[[[[[[[[[]]]]]]]]]]}`,
		"{\"a\":\n\t\"b\",\r\n\"c\": 01}",
		`{"u": 18446744073709551615, "h": 18446744073709551616, "n": -9223372036854775809}`,
		"{\"a\": \"\xff\"}", "\xfe\xff\x00{\x00}", "\uFEFF{}",
		strings.Repeat("[", 300), `{"a": "[[[", /* [[[ */ "b": [[]] // [[[` + "\n}",
	} {
		f.Add([]byte(s))
	}
	for _, b := range exampleFiles(f, ".json", ".jsonc") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, errs := ParseJSON("f", data)
		lines := strings.Split(string(data), "\n")
		checkPositions(t, data, v, errs, lines, func(line string, col int) bool {
			// ParseJSON counts columns in bytes.
			return col <= len(line)+1
		})
		if !utf8.Valid(data) || utf16BOM(data) {
			if v != nil {
				t.Fatalf("ParseJSON accepted %q, which is not UTF-8", data)
			}
			return
		}
		// ParseJSON skips a UTF-8 byte order mark; hujson does not.
		data = bytes.TrimPrefix(data, utf8BOM)

		std, err := hujson.Standardize(bytes.Clone(data))
		if err != nil {
			if v != nil && len(bytes.TrimSpace(data)) > 0 {
				t.Fatalf("ParseJSON accepted %q, which hujson rejects: %v", data, err)
			}
			return
		}
		if v != nil && !json.Valid(std) {
			t.Fatalf("ParseJSON accepted %q, whose standard form %q is not JSON", data, std)
		}
		var plain any
		if json.Unmarshal(std, &plain) != nil {
			return
		}
		if _, ok := plain.(map[string]any); !ok {
			if v != nil {
				t.Fatalf("ParseJSON accepted %q, whose top level is %T", data, plain)
			}
			return
		}
		dup, hasDup, depth, huge := jsonShape(t, std)
		if hasDup || depth > maxDepth || huge != "" {
			if v != nil {
				t.Fatalf("ParseJSON accepted %q (duplicate key %q, depth %d, integer beyond 64 bits %q)", data, dup, depth, huge)
			}
			return
		}
		if v == nil {
			t.Fatalf("ParseJSON rejected %q, which encoding/json accepts: %v", data, errs)
		}
		dec := json.NewDecoder(bytes.NewReader(std))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("decoding %q with UseNumber: %v", std, err)
		}
		if err := sameJSON("", v.Interface(), want); err != nil {
			t.Fatalf("ParseJSON(%q) disagrees with encoding/json: %v", data, err)
		}
	})
}

// jsonShape walks standard JSON and reports the first key an object holds
// twice, if any, the deepest nesting of objects and arrays (the top-level
// object is level 1) and an integer that fits neither int64 nor uint64.
func jsonShape(t *testing.T, std []byte) (dup string, hasDup bool, depth int, huge string) {
	var stack []*jsonFrame
	dec := json.NewDecoder(bytes.NewReader(std))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dup, hasDup, depth, huge
		}
		if err != nil {
			t.Fatalf("tokenizing %q: %v", std, err)
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone(stack)
				continue
			}
			k := tok.(string)
			if stack[n-1].keys[k] && !hasDup {
				dup, hasDup = k, true
			}
			stack[n-1].keys[k] = true
			stack[n-1].wantKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == ']' || d == '}') {
			stack = stack[:len(stack)-1]
			valueDone(stack)
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonFrame{obj: true, wantKey: true, keys: map[string]bool{}})
			depth = max(depth, len(stack))
		case json.Delim('['):
			stack = append(stack, &jsonFrame{})
			depth = max(depth, len(stack))
		default:
			if n, ok := tok.(json.Number); ok && huge == "" && !strings.ContainsAny(string(n), ".eE") {
				_, errI := strconv.ParseInt(string(n), 10, 64)
				_, errU := strconv.ParseUint(string(n), 10, 64)
				if errI != nil && errU != nil {
					huge = string(n)
				}
			}
			valueDone(stack)
		}
	}
}

// jsonFrame is an object or array being walked by jsonShape.
type jsonFrame struct {
	obj     bool
	wantKey bool
	keys    map[string]bool
}

// valueDone notes that a value ended: an object then expects a key.
func valueDone(stack []*jsonFrame) {
	if n := len(stack); n > 0 && stack[n-1].obj {
		stack[n-1].wantKey = true
	}
}

// sameJSON compares tree.Value.Interface() output with encoding/json's
// UseNumber decoding: integers written without a fraction or exponent must be
// int64 when they fit it, else uint64; every other number float64.
func sameJSON(path string, got, want any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want an object", path, got)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d keys, want %d", path, len(g), len(w))
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s: missing key %q", path, k)
			}
			if err := sameJSON(path+"."+k, gv, wv); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want an array", path, got)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d items, want %d", path, len(g), len(w))
		}
		for i := range w {
			if err := sameJSON(path+"["+strconv.Itoa(i)+"]", g[i], w[i]); err != nil {
				return err
			}
		}
	case json.Number:
		s := string(w)
		i, intErr := strconv.ParseInt(s, 10, 64)
		isInt := intErr == nil && !strings.ContainsAny(s, ".eE")
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%s: encoding/json accepted %s, which ParseFloat rejects: %v", path, s, err)
		}
		switch g := got.(type) {
		case int64:
			if !isInt || g != i {
				return fmt.Errorf("%s: got int64 %d for %s", path, g, s)
			}
		case uint64:
			if u, err := strconv.ParseUint(s, 10, 64); err != nil || isInt || g != u {
				return fmt.Errorf("%s: got uint64 %d for %s", path, g, s)
			}
		case float64:
			if isInt || !strings.ContainsAny(s, ".eE") || g != f {
				return fmt.Errorf("%s: got float64 %v for %s", path, g, s)
			}
		default:
			return fmt.Errorf("%s: got %T %v for number %s", path, got, got, s)
		}
	default:
		if got != want {
			return fmt.Errorf("%s: got %T %#v, want %T %#v", path, got, got, want, want)
		}
	}
	return nil
}
