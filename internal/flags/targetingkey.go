package flags

// NeedsTargetingKey reports whether the targeting of flag key buckets users
// by the targeting key (a `fractional` without a bucket expression), so that
// an evaluation without one cannot place the user. The evaluator then
// answers DEFAULT, as flagd does; OFREP reports TARGETING_KEY_MISSING.
func (s *Set) NeedsTargetingKey(key string) bool {
	f := s.flags[key]
	return f != nil && f.usesKey && f.override == "" && !f.disabled && len(f.problems) == 0
}

// ContextFree reports whether flag key evaluates alike for every context:
// it has no targeting, is disabled, or did not load. An unknown key is not.
func (s *Set) ContextFree(key string) bool {
	f := s.flags[key]
	return f != nil && (f.targeting == nil || f.disabled || len(f.problems) > 0)
}
