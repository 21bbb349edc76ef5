package interp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "plain", "$", "$$", "$${", "$$${A}", "${A}", "${A:-x}", "${A-x}",
		"${A:?m}", "${A?m}", "${A:-${B:-{x}}}", "${A:-$${x}}", "${db-pw}",
		"${X-}", "${", "${}", "${1}", "${A:x}", "${A:-${B", "é${A}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Parse(s)
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("Parse(%q) error %T, want *SyntaxError", s, err)
			}
			if se.Offset < 0 || se.Offset >= len(s) {
				t.Fatalf("Parse(%q) error offset %d out of range", s, se.Offset)
			}
			return
		}
		src := tm.String()
		if src != s {
			t.Fatalf("Parse(%q).String() = %q", s, src)
		}
		again, err := Parse(src)
		if err != nil {
			t.Fatalf("Parse(String()) of %q: %v", s, err)
		}
		if diff := cmp.Diff(tm, again); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", s, diff)
		}
		checkRefs(t, s, tm)

		// Expand with names alternately unset, empty and set.
		lookup := func(name string) (string, bool) {
			switch len(name) % 3 {
			case 0:
				return "", false
			case 1:
				return "", true
			}
			return "v", true
		}
		_, probs := tm.Expand(lookup)
		for _, p := range probs {
			if p.Offset < 0 || p.Offset+2 > len(s) || s[p.Offset:p.Offset+2] != "${" {
				t.Fatalf("Expand(%q) problem %+v does not point at a reference", s, p)
			}
		}
		tm.Names()
		tm.SingleRef()
	})
}

// checkRefs verifies that every reference's offset points at its "${" and
// names are non-empty.
func checkRefs(t *testing.T, s string, tm Template) {
	t.Helper()
	for _, p := range tm.Parts {
		if (p.Ref == nil) == (p.Literal == "") {
			t.Fatalf("Parse(%q): part %+v must have exactly one of Literal and Ref", s, p)
		}
		if p.Ref == nil {
			continue
		}
		if p.Ref.Name == "" || p.Ref.Offset+2 > len(s) || s[p.Ref.Offset:p.Ref.Offset+2] != "${" {
			t.Fatalf("Parse(%q): bad reference %+v", s, p.Ref)
		}
		checkRefs(t, s, p.Ref.Arg)
	}
}
