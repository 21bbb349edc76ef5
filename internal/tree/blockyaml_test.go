package tree

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The block-style fast path of ParseYAML must give exactly what yaml.v3 gives
// whenever it takes an input on: these tests compare parseBlockYAML with
// parseYAMLv3 on real files, on edge cases and on generated documents.

// sameTree describes the first difference between two trees, or returns "".
func sameTree(path string, a, b *Value) string {
	if a == nil || b == nil {
		if a != b {
			return fmt.Sprintf("%s: one tree is nil (%v, %v)", path, a, b)
		}
		return ""
	}
	floatsDiffer := a.Float != b.Float && !(math.IsNaN(a.Float) && math.IsNaN(b.Float))
	if a.Kind != b.Kind || a.Bool != b.Bool || a.Int != b.Int || a.Uint != b.Uint || floatsDiffer || a.Str != b.Str ||
		a.Src != b.Src || a.Quoted != b.Quoted || a.Template != b.Template || a.Via != nil || b.Via != nil ||
		a.Secret != b.Secret || a.Unresolved != b.Unresolved || len(a.Overridden)+len(b.Overridden) > 0 {
		return fmt.Sprintf("%s: %+v != %+v", path, *a, *b)
	}
	if len(a.Fields) != len(b.Fields) || len(a.Items) != len(b.Items) ||
		(a.Fields == nil) != (b.Fields == nil) || (a.Items == nil) != (b.Items == nil) {
		return fmt.Sprintf("%s: %d fields/%d items != %d fields/%d items", path, len(a.Fields), len(a.Items), len(b.Fields), len(b.Items))
	}
	if a.Kind == Map && cap(a.Fields) != len(a.Fields) {
		return fmt.Sprintf("%s: fields have spare capacity %d (len %d), so appends could clobber a neighbour", path, cap(a.Fields), len(a.Fields))
	}
	if a.Kind == Array && cap(a.Items) != len(a.Items) {
		return fmt.Sprintf("%s: items have spare capacity %d (len %d)", path, cap(a.Items), len(a.Items))
	}
	for i := range a.Fields {
		if a.Fields[i].Key != b.Fields[i].Key {
			return fmt.Sprintf("%s: key %d is %q, not %q", path, i, a.Fields[i].Key, b.Fields[i].Key)
		}
		if d := sameTree(path+"."+a.Fields[i].Key, a.Fields[i].Value, b.Fields[i].Value); d != "" {
			return d
		}
	}
	for i := range a.Items {
		if d := sameTree(fmt.Sprintf("%s[%d]", path, i), a.Items[i], b.Items[i]); d != "" {
			return d
		}
	}
	return ""
}

// checkBlockYAML parses data both ways and fails on any difference. It
// reports whether the fast path took the input on.
func checkBlockYAML(t testing.TB, data []byte) bool {
	t.Helper()
	fast, ok := parseBlockYAML("f.yaml", data)
	if !ok {
		if fast != nil {
			t.Fatalf("input %q: declined but returned a tree", data)
		}
		return false
	}
	slow, errs := parseYAMLv3("f.yaml", data)
	if len(errs) > 0 {
		t.Fatalf("input %q: fast path took it on, yaml.v3 rejects it: %v", data, errs)
	}
	if d := sameTree("", fast, slow); d != "" {
		t.Fatalf("input %q: fast path and yaml.v3 differ at %s", data, d)
	}
	return true
}

func TestBlockYAMLExamples(t *testing.T) {
	for _, name := range []string{"development", "staging", "production"} {
		data := readExample(t, "arka/config/environments/"+name+".yaml")
		if !checkBlockYAML(t, data) {
			t.Errorf("%s.yaml: the fast path declined it; the benchmarks rely on it", name)
		}
	}
	data := readExample(t, "arka/config/feature-flags.yaml")
	if !checkBlockYAML(t, data) {
		t.Errorf("feature-flags.yaml: the fast path declined it")
	}
}

// blockCases are inputs at the edges of what the fast path takes on. take
// says whether it must take it on; either way, the results must agree.
var blockCases = []struct {
	src  string
	take bool
}{
	{"a: 1\n", true},
	{"a: 1", true},
	{"a: b\nc: d\n", true},
	{"a:\n  b: 1\n  c:\n    d: x\ne: y\n", true},
	{"a:\n  - 1\n  - two\n  - 'three'\n", true},
	{"a:\n- 1\n- 2\nb: 3\n", true},
	{"a:\n  - x: 1\n    y: 2\n  - x: 3\n", true},
	{"a:\n  -   x: 1\n      y: 2\n", true},
	{"- a\n", false},
	{"a:\n- b:\n  - c\n  - d\n  e: f\n", true},
	{"a:\n  - b:\n    - c\n", true},
	{"# c\n\na: 1 # c\n  # indented comment\nb: 'x' # c\nc: \"y\"   # c\n", true},
	{"a: x#y\nb: x #y\n", true},
	{"a: http://x:8080/p?q=1#f\n", true},
	{"a: it's\nb: say \"hi\"\n", true},
	{"a: 'it''s'\n", false},
	{"a: \"x\\ty\"\n", false},
	{"a: \"x\" y\n", false},
	{"a: 'x'y\n", false},
	{"a: 'x'#y\n", false},
	{"a: \"\"\nb: ''\n", true},
	{"a: \"  spaced  \"\n", true},
	{"a:   spaced   out   \n", true},
	{"a: b: c\n", false},
	{"a: b:\n", false},
	{"a:\n", false},
	{"a:\nb: 1\n", false},
	{"a: # only a comment\n", false},
	{"a: |\n  x\n", false},
	{"a: >-\n  x\n", false},
	{"a: [1, 2]\n", false},
	{"a: {b: 1}\n", false},
	{"a: &x 1\nb: *x\n", false},
	{"a: !!str 1\n", false},
	{"a: @x\n", false},
	{"a: `x`\n", false},
	{"a: %x\n", false},
	{"a: ,x\n", false},
	{"a: ?x\n", false},
	{"a: :x\n", false},
	{"a: -\n", false},
	{"a: - x\n", false},
	{"a: -x\n", true},
	{"a: --x\n", true},
	{"a: ---\n", true},
	{"a: x\n  continued\n", false},
	{"a:\n  x\n", false},
	{"a: 1\na: 2\n", false},
	{"a:\n  b: 1\n  b: 2\n", false},
	{"a: 1\n---\nb: 2\n", false},
	{"---\na: 1\n", false},
	{"a: 1\n...\n", false},
	{"%YAML 1.2\n---\na: 1\n", false},
	{"a:\tb\n", false},
	{"a: b\r\n", false},
	{"a: é\n", false},
	{"\xef\xbb\xbfa: 1\n", false},
	{"  a: 1\n", false},
	{"a: 1\n b: 2\n", false},
	{"a:\n    b: 1\n  c: 2\n", false},
	{"a:\n  - x\n - y\n", false},
	{"a:\n  - x\n  b: 1\n", false},
	{"- a: 1\n b: 2\n", false},
	{"a:\n  -\n    b: 1\n", false},
	{"a:\n  - - x\n", false},
	{"a:\n  - # c\n    x\n", false},
	{"\"a\": 1\n", false},
	{"'a': 1\n", false},
	{"a b: 1\n", false},
	{"a : 1\n", false},
	{"<<: {a: 1}\n", false},
	{"? a\n: 1\n", false},
	{"a:b: 1\n", false},
	{"1: one\ntrue: t\nnull: n\n~x: y\n", false},
	{"1: one\ntrue: t\nnull: n\n", true},
	{"a.b/c-d_e: 1\n", true},
	{"-a: 1\n", false},
	{".a: 1\n", false},
	{"a:\n  - a\n  -  b\n  -   c\n", true},
	{"a:\n  - 'q'   \n  - \"r\" # c\n", true},
	{"a:\n  - x\n\n\n  - y\n# c\n  - z\n", true},
	{"a:\n  - x\n# c at column 0\n  - y\n", true},
	{"a:\n  b:\n  # comment between\n    c: 1\n", true},
	{"x: " + strings.Repeat("y", 2000) + "\n", true},
	{strings.Repeat("k", 200) + ": 1\n", false},
	{"a: 1\n\n\n", true},
	{"\n\n\na: 1", true},
	{"", false},
	{"# only\n", false},
}

// scalarCases are plain scalars whose resolution must match yaml.v3's.
var scalarCases = []string{
	"0", "1", "-1", "+1", "007", "0755", "08", "09.5", "1_000", "1__0", "_1", "1_", "0x1F", "0X1f", "0x_1F",
	"-0x1F", "0b101", "-0b101", "0b2", "0o17", "-0o17", "0o8", "0O17", "9223372036854775807",
	"9223372036854775808", "18446744073709551615", "18446744073709551616", "-9223372036854775808",
	"-9223372036854775809", "1.5", "-1.5", "+1.5", "1.", "-1.", ".5", "-.5", "+.5", "1e3", "1E3", "1e+3",
	"1e-3", "1.5e3", "1e", "1e+", "e3", "1e400", "-1e400", "1_0.5", "1.5_0", "0x1p-2", "0x1.8p1", "1p3",
	".inf", ".Inf", ".INF", "+.inf", "-.inf", "-.Inf", ".iNf", ".nan", ".NaN", ".NAN", "+.nan", "-.nan", "inf",
	"Infinity", "NaN", "nan", ".", "..", "-", "+", "+-1", "--1", "1-", "1.2.3", "1,000", "1 000",
	"true", "True", "TRUE", "tRue", "false", "False", "FALSE", "yes", "Yes", "no", "No", "on", "On", "off",
	"Off", "y", "Y", "n", "N", "t", "f", "o", "~", "~~", "null", "Null", "NULL", "nULL", "nil",
	"2024-01-01", "2024-1-2", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "12:30", "1:2:3",
	"190:20:30", "<<", "<", "a<<", "=", "\\", "/", "_", "0.0.0.0", "127.0.0.1:8080", "v1.2.3", "1.2.3-rc1",
	"1h30m", "30s", "10%", "$5", "${X}", "${X:-1}", "a b", "a  b", "a ~", "x=1,y=2", "(a)", "a]", "a}",
	"a,b", "a[0]", "a{b}", "a?b", "a!b", "a&b", "a*b", "a|b", "a>b", "a'b", "a\"b", "a%b", "a@b", "a`b",
}

func TestBlockYAMLCases(t *testing.T) {
	for _, c := range blockCases {
		took := checkBlockYAML(t, []byte(c.src))
		if took != c.take {
			t.Errorf("input %q: fast path took it on: %v, want %v", c.src, took, c.take)
		}
	}
	// Large mappings switch to a set for the duplicate check.
	var big strings.Builder
	for i := range 100 {
		fmt.Fprintf(&big, "k%d: %d\n", i, i)
	}
	if !checkBlockYAML(t, []byte(big.String())) {
		t.Errorf("a mapping of 100 keys was declined")
	}
	for _, dup := range []string{"k0: x\n", "k99: x\n", "k31: x\n", "k32: x\n"} {
		if checkBlockYAML(t, []byte(big.String()+dup)) {
			t.Errorf("duplicate %q after 100 keys was taken on", dup)
		}
	}
	for _, s := range scalarCases {
		for _, doc := range []string{"k: " + s + "\n", "k:\n  - " + s + "\n", "k:\n  - a: " + s + "\n"} {
			checkBlockYAML(t, []byte(doc))
		}
	}
}

func TestYAMLStyleFloat(t *testing.T) {
	re := regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
	inputs := append([]string{"", "+", "-", ".", "+.", "e", "1e", ".e1", "1.e1", "-.5e-3", "00.00E+00"}, scalarCases...)
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789.eE+-_x"
	for range 20000 {
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := yamlStyleFloat(s), re.MatchString(s); got != want {
			t.Errorf("yamlStyleFloat(%q) = %v, want %v", s, got, want)
		}
	}
}

// genBlockYAML writes a random document in (mostly) the block style, with
// random indentation widths, comments and blank lines, and scalars drawn
// from scalarCases and a few quoted forms.
func genBlockYAML(r *rand.Rand) []byte {
	var b strings.Builder
	keys := []string{"a", "b", "c", "key", "x1", "a.b", "a-b", "a_b", "a/b", "1", "true", "null", "k"}
	scalar := func() string {
		switch r.IntN(10) {
		case 0:
			return "'" + scalarCases[r.IntN(len(scalarCases))] + "'"
		case 1:
			return "\"" + scalarCases[r.IntN(len(scalarCases))] + "\""
		case 2:
			return "plain words here"
		}
		return scalarCases[r.IntN(len(scalarCases))]
	}
	comment := func() string {
		if r.IntN(6) == 0 {
			return " # note"
		}
		return ""
	}
	filler := func(indent int) {
		switch r.IntN(8) {
		case 0:
			b.WriteString("\n")
		case 1:
			b.WriteString(strings.Repeat(" ", r.IntN(indent+3)) + "# comment\n")
		}
	}
	var mapping func(indent, depth int, first string)
	var sequence func(indent, depth int)
	value := func(indent, depth int) {
		switch n := r.IntN(10); {
		case n < 6 || depth > 4:
			b.WriteString(" " + scalar() + comment() + "\n")
		case n < 8:
			b.WriteString(comment() + "\n")
			filler(indent)
			mapping(indent+1+r.IntN(4), depth+1, "")
		default:
			b.WriteString(comment() + "\n")
			filler(indent)
			step := r.IntN(3) // 0: an indentless sequence
			sequence(indent+step, depth+1)
		}
	}
	mapping = func(indent, depth int, first string) {
		used := map[string]bool{}
		for i, n := 0, 1+r.IntN(4); i < n; i++ {
			k := keys[r.IntN(len(keys))]
			if used[k] {
				continue
			}
			used[k] = true
			if i == 0 && first != "" {
				b.WriteString(first)
			} else {
				b.WriteString(strings.Repeat(" ", indent))
			}
			b.WriteString(k + ":")
			value(indent, depth)
			filler(indent)
		}
	}
	sequence = func(indent, depth int) {
		for i, n := 0, 1+r.IntN(3); i < n; i++ {
			pad := strings.Repeat(" ", 1+r.IntN(2))
			prefix := strings.Repeat(" ", indent) + "-" + pad
			if r.IntN(3) == 0 && depth < 5 {
				mapping(indent+1+len(pad), depth+1, prefix)
			} else {
				b.WriteString(prefix + scalar() + comment() + "\n")
			}
			filler(indent)
		}
	}
	mapping(0, 0, "")
	return []byte(b.String())
}

// mutate damages a document a little: the fast path must then decline it or
// still agree with yaml.v3.
func mutate(r *rand.Rand, data []byte) []byte {
	if len(data) == 0 {
		return data
	}
	out := append([]byte(nil), data...)
	for range 1 + r.IntN(3) {
		i := r.IntN(len(out))
		const bytes = " -:#'\"\n\tab1.[{&*!|>?,~"
		switch r.IntN(3) {
		case 0:
			out = append(out[:i], out[i+1:]...)
		case 1:
			out = append(out[:i], append([]byte{bytes[r.IntN(len(bytes))]}, out[i:]...)...)
		default:
			out[i] = bytes[r.IntN(len(bytes))]
		}
		if len(out) == 0 {
			break
		}
	}
	return out
}

func TestBlockYAMLGenerated(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewPCG(7, 11))
	took, mutatedTook := 0, 0
	for range n {
		doc := genBlockYAML(r)
		if checkBlockYAML(t, doc) {
			took++
		}
		if checkBlockYAML(t, mutate(r, doc)) {
			mutatedTook++
		}
	}
	// The generator writes mostly what the fast path is for; if it stops
	// taking those on, the comparison above tests nothing.
	if took < n/4 {
		t.Errorf("the fast path took on %d of %d generated documents", took, n)
	}
	t.Logf("fast path took on %d/%d generated and %d/%d mutated documents", took, n, mutatedTook, n)
}

func FuzzParseBlockYAML(f *testing.F) {
	for _, c := range blockCases {
		f.Add([]byte(c.src))
	}
	for _, b := range exampleFiles(f, ".yaml", ".yml") {
		f.Add(b)
	}
	r := rand.New(rand.NewPCG(3, 5))
	for range 50 {
		f.Add(genBlockYAML(r))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBlockYAML(t, data)
	})
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkParseYAML compares the two paths on examples/arka production.
func BenchmarkParseYAML(b *testing.B) {
	data, err := os.ReadFile("../../examples/arka/config/environments/production.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("block", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := parseBlockYAML("f.yaml", data); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("yaml.v3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, errs := parseYAMLv3("f.yaml", data); errs != nil {
				b.Fatal(errs)
			}
		}
	})
}
