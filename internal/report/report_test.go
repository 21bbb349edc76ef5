package report_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/report"
	"github.com/envplane/envplane/internal/tree"
)

func str(s, template string, secret bool) *tree.Value {
	return &tree.Value{Kind: tree.String, Str: s, Template: template, Secret: secret}
}

func root(v *tree.Value) *tree.Value {
	return &tree.Value{Kind: tree.Map, Fields: []tree.Field{{Key: "k", Value: v}}}
}

// TestDiffDoesNotConfirmGuesses: unrevealed, a value built from a secret
// is "changed" against anything not built the same way from secrets, even
// text equal to it — otherwise a release writing a guess next to one
// referencing the secret would learn whether the guess is right.
func TestDiffDoesNotConfirmGuesses(t *testing.T) {
	secret := str("hunter2", "${DB_PASSWORD}", true)
	tests := []struct {
		name   string
		a, b   *tree.Value
		reveal bool
		want   []string // kinds of the changes
	}{
		{"a literal equal to the secret", secret, str("hunter2", "", false), false, []string{"changed"}},
		{"built differently from secrets", secret, str("hunter2", "hunter${TWO}", true), false, []string{"changed"}},
		{"the same reference, the same value", secret, str("hunter2", "${DB_PASSWORD}", true), false, nil},
		{"the same reference, another value", secret, str("other", "${DB_PASSWORD}", true), false, []string{"changed"}},
		{"revealed: values compare", secret, str("hunter2", "", false), true, nil},
		{"plain values compare", str("a", "", false), str("a", "", false), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range report.Diff(root(tt.a), root(tt.b), render.Options{Reveal: tt.reveal}) {
				got = append(got, c.Kind)
				if !tt.reveal && string(c.A) != `"`+render.Redacted+`"` {
					t.Errorf("unrevealed side a shows %s", c.A)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
