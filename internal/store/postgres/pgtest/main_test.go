package pgtest

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{"TestA"}, "pgtest: skipped 1 PostgreSQL test (TestA): set " + EnvURL + "=postgres://USER@HOST:5432/DB?sslmode=disable to run them\n"},
		{[]string{"A", "B", "C", "D", "E", "F", "G"}, "pgtest: skipped 7 PostgreSQL tests (A, B, C, D, E and 2 more): set " + EnvURL + "=postgres://USER@HOST:5432/DB?sslmode=disable to run them\n"},
	} {
		skipped.names = c.names
		var b strings.Builder
		Report(&b)
		if b.String() != c.want {
			t.Errorf("Report with %v:\n got %q\nwant %q", c.names, b.String(), c.want)
		}
	}
	skipped.names = nil
}
