package diag_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
)

func list(n int) diag.List {
	l := make(diag.List, n)
	for i := range l {
		l[i] = diag.Errorf(diag.Pos{File: "f", Line: i + 1, Column: 1}, "unset")
	}
	return l
}

func TestCapped(t *testing.T) {
	tests := []struct {
		name string
		n    int
		max  int
		want []string
	}{
		{"under", 2, 3, []string{"f:1:1: unset", "f:2:1: unset"}},
		{"at", 3, 3, []string{"f:1:1: unset", "f:2:1: unset", "f:3:1: unset"}},
		{"one over", 4, 3, []string{"f:1:1: unset", "f:2:1: unset", "f:3:1: unset", "… and 1 more problem"}},
		{"many over", 10, 2, []string{"f:1:1: unset", "f:2:1: unset", "… and 8 more problems"}},
		{"no cap", 3, -1, []string{"f:1:1: unset", "f:2:1: unset", "f:3:1: unset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := list(tt.n)
			var got []string
			for _, d := range l.Capped(tt.max) {
				got = append(got, d.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(l) != tt.n || l[len(l)-1].Message != "unset" {
				t.Errorf("Capped changed its receiver")
			}
		})
	}
}

// TestErrorIsCapped: 200,000 problems make a short error, not megabytes.
func TestErrorIsCapped(t *testing.T) {
	msg := list(200_000).Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != diag.MaxReported+1 {
		t.Fatalf("got %d lines, want %d", len(lines), diag.MaxReported+1)
	}
	if want := "… and 199900 more problems"; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}
}
