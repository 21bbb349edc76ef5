package dotenv

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/diag"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "A=1\n", "export A = 'x' # c\n", "A=\"a\\n\nb\"\n", "A=\"x\r\ny\"\r\n",
		"\uFEFFA=1", "1X=2", "A='x", "A=\"x", "A=\"x\" y", "A=1 # c\nA=2\n",
		"FOO\n=x\n", "a.b-c=${X:-y}\n", "A='${X}'\nB=\"\\${X}\"\n",
		"A=\xff\n", "A=\"é\xe9\"\n", "\xff\xfeA\x00=\x001\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, errs := Parse("f.env", data)
		if !utf8.Valid(data) && (len(entries) > 0 || len(errs) == 0) {
			t.Fatalf("Parse(%q): not UTF-8, but %d entries and %d errors", data, len(entries), len(errs))
		}
		s := strings.TrimPrefix(string(data), "\uFEFF")
		lines := strings.Split(s, "\n")
		check := func(what string, p diag.Pos) {
			t.Helper()
			if p.File != "f.env" || p.Line < 1 || p.Line > len(lines) || p.Column < 1 || p.Column > len(lines[p.Line-1])+1 {
				t.Fatalf("Parse(%q): %s position %+v outside the input", data, what, p)
			}
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !validName(e.Name) {
				t.Fatalf("Parse(%q): invalid name %q returned", data, e.Name)
			}
			if seen[e.Name] {
				t.Fatalf("Parse(%q): duplicate name %q returned", data, e.Name)
			}
			seen[e.Name] = true
			check("name", e.NamePos)
			check("value", e.ValuePos)
			if !strings.HasPrefix(lines[e.NamePos.Line-1][e.NamePos.Column-1:], e.Name) {
				t.Fatalf("Parse(%q): NamePos %+v does not point at %q", data, e.NamePos, e.Name)
			}
		}
		for _, d := range errs {
			check("error", d.Pos)
			if d.Message == "" {
				t.Fatalf("Parse(%q): empty error message at %v", data, d.Pos)
			}
		}
	})
}
