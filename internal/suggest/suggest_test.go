package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"staging", "staging", 0},
		{"stagign", "staging", 2},
		{"prodution", "production", 1},
		{"kitten", "sitting", 3},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetry)", c.b, c.a, got, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	envs := []string{"development", "staging", "preproduction", "production"}
	for _, c := range []struct {
		s          string
		candidates []string
		want       string
	}{
		{"stagign", envs, "staging"},
		{"Production", envs, "production"}, // case is ignored
		{"prod", envs, "production"},       // the only abbreviation
		{"dev", envs, "development"},
		{"pre", envs, "preproduction"},
		{"p", envs, ""}, // too short to abbreviate
		{"qa", envs, ""},
		{"staging", envs, ""},                           // itself: nothing to suggest
		{"prod", []string{"production", "prodigy"}, ""}, // ambiguous abbreviation
		{"enviroments", []string{"config", "environments", "name"}, "environments"},
		{"x", nil, ""},
	} {
		if got := Closest(c.s, c.candidates); got != c.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", c.s, c.candidates, got, c.want)
		}
	}
}
