package workspace

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestEnvNameMatchesRegexp: the hand-written check accepts exactly what the
// regexp it replaced accepts.
func TestEnvNameMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	cases := []string{"", "a", "dev", "prod-eu-1", "1dev", "-dev", "Dev", "dév", "a\n", "a b", "a_b", "a.b",
		"a" + string(make([]byte, 62)), "a" + repeat('x', 62), "a" + repeat('x', 63), repeat('z', 64)}
	const alphabet = "az09-_A.Z\n é"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := envNameRE.MatchString(s), re.MatchString(s); got != want {
			t.Errorf("%q: %v, the regexp says %v", s, got, want)
		}
	}
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
