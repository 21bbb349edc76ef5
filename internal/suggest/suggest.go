// Package suggest finds the name a user most likely meant: the one
// did-you-mean of envplane.yaml's unknown fields, explain's unknown keys and
// the command line's unknown environments.
package suggest

import "strings"

// Distance is the Levenshtein edit distance between a and b, counted in
// bytes: insertions, deletions and substitutions each cost one.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// MaxDistance is how far, in edits, a typo may be from what Closest proposes.
const MaxDistance = 2

// Closest returns the candidate s most likely stands for, ignoring case:
// the nearest within MaxDistance edits (the first listed among equals), else
// the only candidate s abbreviates (prod → production). It returns "" when
// there is none, and for s itself.
func Closest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestD := "", MaxDistance+1
	for _, c := range candidates {
		if c == s {
			return ""
		}
		if d := Distance(ls, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" || len(ls) < 2 {
		return best
	}
	prefixed := ""
	for _, c := range candidates {
		if strings.HasPrefix(strings.ToLower(c), ls) {
			if prefixed != "" {
				return ""
			}
			prefixed = c
		}
	}
	return prefixed
}
