package interp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lit(s string) Part { return Part{Literal: s} }

func ref(off int, name string, op Op, arg ...Part) Part {
	return Part{Ref: &Ref{Name: name, Op: op, Arg: Template{Parts: arg}, Offset: off}}
}

func tmpl(parts ...Part) Template { return Template{Parts: parts} }

func TestHasRefs(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"plain", false},
		{"$HOME", false},
		{"cost: $5 {x}", false},
		{"${HOME}", true},
		{"a$${HOME}", true},
		{"${", true},
	}
	for _, tt := range tests {
		if got := HasRefs(tt.in); got != tt.want {
			t.Errorf("HasRefs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Template
	}{
		{"", Template{}},
		{"plain", tmpl(lit("plain"))},
		{"$", tmpl(lit("$"))},
		{"$$", tmpl(lit("$$"))},
		{"$HOME and $5", tmpl(lit("$HOME and $5"))},
		{"{}", tmpl(lit("{}"))},
		{"}{", tmpl(lit("}{"))},
		{"${HOME}", tmpl(ref(0, "HOME", OpNone))},
		{"${_x.y-z}", tmpl(ref(0, "_x.y", OpDefaultUnset, lit("z")))},
		{"${db-password}", tmpl(ref(0, "db", OpDefaultUnset, lit("password")))},
		{"${NAME-fallback}", tmpl(ref(0, "NAME", OpDefaultUnset, lit("fallback")))},
		{"${a.1}", tmpl(ref(0, "a.1", OpNone))},
		{"x${A}y${B}z", tmpl(lit("x"), ref(1, "A", OpNone), lit("y"), ref(6, "B", OpNone), lit("z"))},
		{"${A}${B}", tmpl(ref(0, "A", OpNone), ref(4, "B", OpNone))},
		{"${PORT:-8080}", tmpl(ref(0, "PORT", OpDefault, lit("8080")))},
		{"${PORT-8080}", tmpl(ref(0, "PORT", OpDefaultUnset, lit("8080")))},
		{"${X-}", tmpl(ref(0, "X", OpDefaultUnset))},
		{"${X:-}", tmpl(ref(0, "X", OpDefault))},
		{"${X--y}", tmpl(ref(0, "X", OpDefaultUnset, lit("-y")))},
		{"${X-/tmp}", tmpl(ref(0, "X", OpDefaultUnset, lit("/tmp")))},
		{"${X-${Y}}", tmpl(ref(0, "X", OpDefaultUnset, ref(4, "Y", OpNone)))},
		// A "-" followed by a letter or underscore continues the name.
		{"${a-_b-c}", tmpl(ref(0, "a", OpDefaultUnset, lit("_b-c")))},
		{"${cert-2024}", tmpl(ref(0, "cert", OpDefaultUnset, lit("2024")))},
		{"${X:?}", tmpl(ref(0, "X", OpRequired))},
		{"${X?}", tmpl(ref(0, "X", OpRequiredUnset))},
		{"${X:?set X please}", tmpl(ref(0, "X", OpRequired, lit("set X please")))},
		{"${X?set X}", tmpl(ref(0, "X", OpRequiredUnset, lit("set X")))},
		{"${A:-${B:-x}}", tmpl(ref(0, "A", OpDefault, ref(5, "B", OpDefault, lit("x"))))},
		{"${A:-a${B}c}", tmpl(ref(0, "A", OpDefault, lit("a"), ref(6, "B", OpNone), lit("c")))},
		{"${A:-{x}}", tmpl(ref(0, "A", OpDefault, lit("{x}")))},
		{"${A:-{{}}}!", tmpl(ref(0, "A", OpDefault, lit("{{}}")), lit("!"))},
		{"${A:-a:b-c?d $ $x}", tmpl(ref(0, "A", OpDefault, lit("a:b-c?d $ $x")))},
		{"${A:-x}}", tmpl(ref(0, "A", OpDefault, lit("x")), lit("}"))},
		{"${A:?need ${B} or ${C}}", tmpl(ref(0, "A", OpRequired, lit("need "), ref(10, "B", OpNone), lit(" or "), ref(18, "C", OpNone)))},
		// Escapes.
		{"$${HOME}", tmpl(lit("${HOME}"))},
		{"a$${HOME}b", tmpl(lit("a${HOME}b"))},
		{"$$${HOME}", tmpl(lit("$${HOME}"))},
		{"$${", tmpl(lit("${"))},
		{"$$${A}", tmpl(lit("$${A}"))},
		{"$${A}${B}", tmpl(lit("${A}"), ref(5, "B", OpNone))},
		{"${A:-$${x}}", tmpl(ref(0, "A", OpDefault, lit("${x}")))},
		{"é${A}", tmpl(lit("é"), ref(2, "A", OpNone))},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("Parse(%q).String() = %q", tt.in, s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const unterminated = `unterminated reference: "${" without matching "}"`
	tests := []struct {
		in   string
		want *SyntaxError
	}{
		{"${", &SyntaxError{Offset: 0, Msg: unterminated}},
		{"ab${HOME", &SyntaxError{Offset: 2, Msg: unterminated}},
		{"${A:", &SyntaxError{Offset: 0, Msg: unterminated}},
		{"${A:-x", &SyntaxError{Offset: 0, Msg: unterminated}},
		{"${A:-{x}", &SyntaxError{Offset: 0, Msg: unterminated}},
		{"${A:-${B}", &SyntaxError{Offset: 0, Msg: unterminated}},
		{"${A:-${B", &SyntaxError{Offset: 5, Msg: unterminated}},
		{"${}", &SyntaxError{Offset: 2, Msg: `missing variable name after "${"`}},
		{"x ${:-y}", &SyntaxError{Offset: 4, Msg: `missing variable name after "${"`}},
		{"${1X}", &SyntaxError{Offset: 2, Msg: `invalid variable name "1X"`}},
		{"${A B}", &SyntaxError{Offset: 3, Msg: `invalid variable name "A B"`}},
		{"${A B", &SyntaxError{Offset: 3, Msg: `invalid variable name "A B"`}},
		{"${ A}", &SyntaxError{Offset: 2, Msg: `invalid variable name " A"`}},
		{"${A!}", &SyntaxError{Offset: 3, Msg: `invalid variable name "A!"`}},
		{"${A:x}", &SyntaxError{Offset: 3, Msg: `unknown operator ":x" after A (want ":-", "-", ":?" or "?")`}},
		{"${A:=x}", &SyntaxError{Offset: 3, Msg: `unknown operator ":=" after A (want ":-", "-", ":?" or "?")`}},
		{"${A:é}", &SyntaxError{Offset: 3, Msg: `unknown operator ":é" after A (want ":-", "-", ":?" or "?")`}},
		{"${A:-${1}}", &SyntaxError{Offset: 7, Msg: `invalid variable name "1"`}},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		got, ok := err.(*SyntaxError)
		if !ok {
			t.Errorf("Parse(%q) error = %v, want *SyntaxError", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) error mismatch (-want +got):\n%s", tt.in, diff)
		}
		if got.Error() != tt.want.Msg {
			t.Errorf("Parse(%q).Error() = %q, want %q", tt.in, got.Error(), tt.want.Msg)
		}
	}
}

func TestSingleRef(t *testing.T) {
	tests := []struct {
		in   string
		want string // name, or "" when not a single reference
	}{
		{"${PORT}", "PORT"},
		{"${PORT:-8080}", "PORT"},
		{"${A:-${B}}", "A"},
		{"", ""},
		{"8080", ""},
		{" ${PORT}", ""},
		{"${A}${B}", ""},
		{"$${PORT}", ""},
	}
	for _, tt := range tests {
		tm, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		r, ok := tm.SingleRef()
		if ok != (tt.want != "") || ok && r.Name != tt.want {
			t.Errorf("Parse(%q).SingleRef() = %+v, %v; want name %q", tt.in, r, ok, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"plain", nil},
		{"$${A}", nil},
		{"${A}", []string{"A"}},
		{"${B}${A}${B}", []string{"B", "A"}},
		{"${A:-${B:-${C}}}/${D:?need ${E}}", []string{"A", "B", "C", "D", "E"}},
	}
	for _, tt := range tests {
		tm, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, tm.Names()); diff != "" {
			t.Errorf("Parse(%q).Names() mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{
		"USER":  "alice",
		"HOST":  "db.local",
		"EMPTY": "",
		"DOLL":  "${USER}", // values are not re-expanded
	}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	tests := []struct {
		in    string
		want  string
		probs []Problem
	}{
		{"", "", nil},
		{"plain $x", "plain $x", nil},
		{"${USER}", "alice", nil},
		{"${DOLL}", "${USER}", nil},
		{"$${USER}", "${USER}", nil},
		{"$$${USER}", "$${USER}", nil},
		{"u=${USER}@${HOST}", "u=alice@db.local", nil},
		{"[${EMPTY}]", "[]", nil},

		{"${USER:-x}", "alice", nil},
		{"${EMPTY:-x}", "x", nil},
		{"${UNSET:-x}", "x", nil},
		{"${USER-1}", "alice", nil},
		{"${EMPTY-1}", "", nil},
		{"${UNSET-1}", "1", nil},
		{"${UNSET-/x}", "/x", nil},
		{"${UNSET-}", "", nil},
		{"${UNSET:-${EMPTY:-${USER}}}", "alice", nil},
		{"${UNSET:-a${HOST}b}!", "adb.localb!", nil},
		{"${UNSET:-$${x}}", "${x}", nil},
		// Problems in unused fallbacks are not problems.
		{"${USER:-${NOPE}}", "alice", nil},

		{"${USER:?boom}", "alice", nil},
		{"${EMPTY?boom}", "", nil},
		{"${EMPTY:?boom}", "${EMPTY:?boom}", []Problem{{Name: "EMPTY", Offset: 0, Message: "boom"}}},
		{"${UNSET?boom}", "${UNSET?boom}", []Problem{{Name: "UNSET", Offset: 0, Message: "boom"}}},
		{"${UNSET:?}", "${UNSET:?}", []Problem{{Name: "UNSET", Offset: 0, Message: "UNSET is not set"}}},
		{"${UNSET?}", "${UNSET?}", []Problem{{Name: "UNSET", Offset: 0, Message: "UNSET is not set"}}},
		{"${UNSET:?set it for ${USER} or ${X}}", "${UNSET:?set it for ${USER} or ${X}}",
			[]Problem{{Name: "UNSET", Offset: 0, Message: "set it for ${USER} or ${X}"}}},
		{"${UNSET:?${EMPTY}}", "${UNSET:?${EMPTY}}", []Problem{{Name: "UNSET", Offset: 0, Message: "${EMPTY}"}}},

		{"${DATABASE_HOST}", "${DATABASE_HOST}", []Problem{{Name: "DATABASE_HOST", Offset: 0, Message: "DATABASE_HOST is not set"}}},
		// Every problem is reported, at its own offset, and the text of each
		// unresolved reference is kept.
		{
			"postgres://${USER}:${PASS}@${DBHOST}:${PORT:?port needed}/${DB:-app}",
			"postgres://alice:${PASS}@${DBHOST}:${PORT:?port needed}/app",
			[]Problem{
				{Name: "PASS", Offset: 19, Message: "PASS is not set"},
				{Name: "DBHOST", Offset: 27, Message: "DBHOST is not set"},
				{Name: "PORT", Offset: 37, Message: "port needed"},
			},
		},
		{
			"${UNSET:-${A}-${B}}",
			"${A}-${B}",
			[]Problem{
				{Name: "A", Offset: 9, Message: "A is not set"},
				{Name: "B", Offset: 14, Message: "B is not set"},
			},
		},
	}
	for _, tt := range tests {
		tm, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		got, probs := tm.Expand(lookup)
		if got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if diff := cmp.Diff(tt.probs, probs); diff != "" {
			t.Errorf("Expand(%q) problems mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestOpString(t *testing.T) {
	got := []string{OpNone.String(), OpDefault.String(), OpDefaultUnset.String(), OpRequired.String(), OpRequiredUnset.String()}
	want := []string{"", ":-", "-", ":?", "?"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Op.String mismatch (-want +got):\n%s", diff)
	}
}

// TestTemplateString covers templates built by hand, which String must
// escape so that they survive a round trip.
func TestTemplateString(t *testing.T) {
	tests := []struct {
		in   Template
		want string
	}{
		{Template{}, ""},
		{tmpl(lit("${x}")), "$${x}"},
		{tmpl(lit("a${b${c")), "a$${b$${c"},
		{tmpl(ref(0, "A", OpDefault, lit("${x}"))), "${A:-$${x}}"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAllocs(t *testing.T) {
	env := map[string]string{"USER": "u", "PASS": "p", "HOST": "h", "PORT": "1"}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	conn, _ := Parse("postgres://${USER}:${PASS}@${HOST}:5432/db")
	port, _ := Parse("${PORT:-8080}")
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"HasRefs", 0, func() { HasRefs("a plain value without references, $5") }},
		{"ExpandSingleRef", 0, func() { port.Expand(lookup) }},
		{"ExpandTypical", 1, func() { conn.Expand(lookup) }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations, want <= %v", tt.name, got, tt.max)
		}
	}
}

func BenchmarkHasRefs(b *testing.B) {
	s := "postgres://user:secret@db.internal.example.com:5432/app?sslmode=require"
	for b.Loop() {
		HasRefs(s)
	}
}

func BenchmarkParse(b *testing.B) {
	s := "postgres://${USER}:${PASS}@${HOST}:5432/db"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpand(b *testing.B) {
	tm, err := Parse("postgres://${USER}:${PASS}@${HOST}:5432/db")
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"USER": "app", "PASS": "s3cret", "HOST": "db.internal"}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	b.ReportAllocs()
	for b.Loop() {
		tm.Expand(lookup)
	}
}

func TestMasked(t *testing.T) {
	for in, want := range map[string]string{
		"${DB_PASSWORD}":          "${DB_PASSWORD}",
		"hunter2-${DB_HOST}":      "…${DB_HOST}",
		"${DB_PASSWORD:-hunter2}": "${DB_PASSWORD:-…}",
		"${A:-x${B:?no b here}y}": "${A:-…${B:?…}…}",
		"plain secret":            "…",
		"$${literal} and ${X}":    "…${X}",
	} {
		tpl, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := tpl.Masked("…"); got != want {
			t.Errorf("Masked(%q) = %q, want %q", in, got, want)
		}
	}
}
