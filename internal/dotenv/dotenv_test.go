package dotenv

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
)

const file = "app.env"

func at(line, col int) diag.Pos { return diag.Pos{File: file, Line: line, Column: col} }

// e builds an entry whose name is at (line, ncol) and value at (line, vcol).
func e(name, value string, line, ncol, vcol int) Entry {
	return Entry{Name: name, Value: value, NamePos: at(line, ncol), ValuePos: at(line, vcol)}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
		errs []string
	}{
		{name: "empty", in: ""},
		{name: "only comments", in: "# a\n\n   # b\n\t\n"},
		{
			name: "simple",
			in:   "A=1\nB=two words\n",
			want: []Entry{e("A", "1", 1, 1, 3), e("B", "two words", 2, 1, 3)},
		},
		{
			name: "no final newline",
			in:   "A=1",
			want: []Entry{e("A", "1", 1, 1, 3)},
		},
		{
			name: "blanks around name and equals",
			in:   "  A  =  1  \n\tB\t=\t2\t\n",
			want: []Entry{e("A", "1", 1, 3, 9), e("B", "2", 2, 2, 6)},
		},
		{
			name: "export prefix",
			in:   "export A=1\nexport\tB = 2\n",
			want: []Entry{e("A", "1", 1, 8, 10), e("B", "2", 2, 8, 12)},
		},
		{
			name: "variables called export",
			in:   "export=1\nexport = 2\nexportX=3\n",
			want: []Entry{e("export", "2", 2, 1, 10), e("exportX", "3", 3, 1, 9)},
		},
		{
			name: "names with dots and dashes",
			in:   "db.password=x\napi-key=y\n_a1=z\n",
			want: []Entry{e("db.password", "x", 1, 1, 13), e("api-key", "y", 2, 1, 9), e("_a1", "z", 3, 1, 5)},
		},
		{
			name: "empty values",
			in:   "A=\nB=   \nC= # just a comment\n",
			want: []Entry{e("A", "", 1, 1, 3), e("B", "", 2, 1, 6), e("C", "", 3, 1, 4)},
		},
		{
			name: "inline comments",
			in:   "A=1 # one\nB=a#b\nC=#c\nD=x\t# tab\nE=x  #\n",
			want: []Entry{
				e("A", "1", 1, 1, 3),
				e("B", "a#b", 2, 1, 3),
				e("C", "#c", 3, 1, 3),
				e("D", "x", 4, 1, 3),
				e("E", "x", 5, 1, 3),
			},
		},
		{
			name: "unquoted values are raw",
			in:   `A=${B:-x} \n "q" 'r' $$` + "\n",
			want: []Entry{e("A", `${B:-x} \n "q" 'r' $$`, 1, 1, 3)},
		},
		{
			name: "single quotes",
			in:   "A='a b # c'\nB = ' x ' # comment\nC=''\nD='\\n\"'\nE='x'#c\n",
			want: []Entry{
				e("A", "a b # c", 1, 1, 4),
				e("B", " x ", 2, 1, 6),
				e("C", "", 3, 1, 4),
				e("D", `\n"`, 4, 1, 4),
				e("E", "x", 5, 1, 4),
			},
		},
		{
			name: "single quotes keep references literal",
			in:   "A='${HOME} $${x} $5'\n",
			want: []Entry{e("A", "$${HOME} $$${x} $5", 1, 1, 4)},
		},
		{
			name: "double quotes with escapes",
			in:   `A="a\nb\tc\rd\\e\"f"` + "\n" + `B="\$5 \${HOME} ${HOME} \x \'"` + "\n",
			want: []Entry{
				e("A", "a\nb\tc\rd\\e\"f", 1, 1, 4),
				e("B", `$5 $${HOME} ${HOME} \x \'`, 2, 1, 4),
			},
		},
		{
			name: "double quotes spanning lines",
			in:   "A=\"line1\nline2 # not a comment\n\" # comment\nB=2\n",
			want: []Entry{
				e("A", "line1\nline2 # not a comment\n", 1, 1, 4),
				e("B", "2", 4, 1, 3),
			},
		},
		{
			name: "CRLF",
			in:   "A=1\r\nB='x'\r\nC=\"p\r\nq\"\r\n\r\n# c\r\nD=4\r",
			want: []Entry{
				e("A", "1", 1, 1, 3),
				e("B", "x", 2, 1, 4),
				e("C", "p\nq", 3, 1, 4),
				e("D", "4", 7, 1, 3),
			},
		},
		{
			name: "BOM",
			in:   "\uFEFFA=1\n",
			want: []Entry{e("A", "1", 1, 1, 3)},
		},
		{
			name: "later duplicate wins",
			in:   "A=1\nB=2\nA=3\n",
			want: []Entry{e("B", "2", 2, 1, 3), e("A", "3", 3, 1, 3)},
		},
		{
			name: "missing equals",
			in:   "A=1\nFOO\nB=2\n",
			want: []Entry{e("A", "1", 1, 1, 3), e("B", "2", 3, 1, 3)},
			errs: []string{"app.env:2:4: expected NAME=VALUE"},
		},
		{
			name: "missing name",
			in:   "=x\n  = y\n",
			errs: []string{"app.env:1:1: expected NAME=VALUE", "app.env:2:3: expected NAME=VALUE"},
		},
		{
			name: "not an assignment",
			in:   "FOO BAR=1\nexport FOO\nA: 1\n",
			errs: []string{
				"app.env:1:5: expected NAME=VALUE",
				"app.env:2:11: expected NAME=VALUE",
				"app.env:3:4: expected NAME=VALUE",
			},
		},
		{
			name: "invalid names",
			in:   "1X=2\n  a$b = 3\nA.ok=4\n-x=5\n",
			want: []Entry{e("A.ok", "4", 3, 1, 6)},
			errs: []string{
				`app.env:1:1: invalid variable name "1X"`,
				`app.env:2:3: invalid variable name "a$b"`,
				`app.env:4:1: invalid variable name "-x"`,
			},
		},
		{
			name: "invalid name with multi-line value",
			in:   "1X=\"a\nb=c\"\nA=1\n",
			want: []Entry{e("A", "1", 3, 1, 3)},
			errs: []string{`app.env:1:1: invalid variable name "1X"`},
		},
		{
			name: "unterminated single quote",
			in:   "A='abc\nB=1\n",
			want: []Entry{e("B", "1", 2, 1, 3)},
			errs: []string{"app.env:1:3: unterminated single-quoted value"},
		},
		{
			name: "unterminated double quote",
			in:   "A=1\n\nB=\"abc\nC=1\n",
			want: []Entry{e("A", "1", 1, 1, 3)},
			errs: []string{"app.env:5:1: unterminated double-quoted value (opened at line 3)"},
		},
		{
			name: "unterminated double quote at end of line",
			in:   `A="abc\"`,
			errs: []string{"app.env:1:9: unterminated double-quoted value (opened at line 1)"},
		},
		{
			name: "text after closing quote",
			in:   "A='x' y\nB=\"x\"y\nC=\"a\nb\"  z # c\nD=1\n",
			want: []Entry{e("D", "1", 5, 1, 3)},
			errs: []string{
				"app.env:1:7: unexpected text after closing quote",
				"app.env:2:6: unexpected text after closing quote",
				"app.env:4:5: unexpected text after closing quote",
			},
		},
		{
			name: "every problem at once",
			in:   "A=1\n1B=2\nC\nD='x\nE=5\n",
			want: []Entry{e("A", "1", 1, 1, 3), e("E", "5", 5, 1, 3)},
			errs: []string{
				`app.env:2:1: invalid variable name "1B"`,
				"app.env:3:2: expected NAME=VALUE",
				"app.env:4:3: unterminated single-quoted value",
			},
		},
		{
			name: "invalid UTF-8 fails the file, at each bad line",
			in:   "A=ok\nB=\"é\xe9\"\nC=\xff\n",
			errs: []string{"app.env:2:6: invalid UTF-8; save the file as UTF-8 text", "app.env:3:3: invalid UTF-8; save the file as UTF-8 text"},
		},
		{
			name: "UTF-16",
			in:   "\xff\xfeA\x00=\x001\x00",
			errs: []string{"app.env:1:1: UTF-16 is not supported; save the file as UTF-8"},
		},
		// The format is flat, but a million of anything must stay fast.
		{
			name: "a million brackets",
			in:   "A=" + strings.Repeat("[{", 1_000_000) + "\n",
			want: []Entry{e("A", strings.Repeat("[{", 1_000_000), 1, 1, 3)},
		},
		{
			name: "a million references",
			in:   "A=\"" + strings.Repeat("${", 1_000_000) + "\"\n",
			want: []Entry{{Name: "A", Value: strings.Repeat("${", 1_000_000), NamePos: at(1, 1), ValuePos: at(1, 4)}},
		},
		{
			name: "a million unterminated quotes",
			in:   strings.Repeat("A=\"\n", 1_000_001),
			errs: []string{"app.env:1000002:1: unterminated double-quoted value (opened at line 1000001)"},
			want: []Entry{{Name: "A", Value: "\nA=", NamePos: at(999999, 1), ValuePos: at(999999, 4)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, errs := Parse(file, []byte(tt.in))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries mismatch (-want +got):\n%s", diff)
			}
			var msgs []string
			for _, d := range errs {
				msgs = append(msgs, d.Error())
			}
			if diff := cmp.Diff(tt.errs, msgs); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"A", true},
		{"_", true},
		{"a.b-c_1", true},
		{"", false},
		{"1A", false},
		{".a", false},
		{"-a", false},
		{"a b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := validName(tt.in); got != tt.want {
			t.Errorf("validName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	var data []byte
	for i := range 300 {
		data = append(data, "# comment\nVAR_"...)
		data = append(data, byte('A'+i%26), byte('A'+i/26))
		data = append(data, "=\"some value ${OTHER}\" # note\n"...)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := Parse("bench.env", data); errs != nil {
			b.Fatal(errs)
		}
	}
}

// Quote's output parses back to the same value (with Parse's literal "${"
// escaping undone), whatever the value holds.
func TestQuoteRoundTrips(t *testing.T) {
	for _, v := range []string{"", "plain", "two words", "it's", "a\nb", "x=y#z", `back\slash`, `"quoted"`, "dollar $HOME ${X} $${Y}", "tab\there", "`cmd`", "it's\nmulti ${X}", "\r\n", "ünïcode ✓"} {
		entries, errs := Parse("t.env", []byte("K="+Quote(v)+"\n"))
		if len(errs) > 0 || len(entries) != 1 {
			t.Fatalf("%q → %q: %v", v, Quote(v), errs)
		}
		if got := strings.ReplaceAll(entries[0].Value, "$${", "${"); got != v {
			t.Errorf("%q → %q → %q", v, Quote(v), got)
		}
	}
}
