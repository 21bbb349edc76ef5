package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/cputime"
	"github.com/envplane/envplane/internal/domain"
)

// BenchmarkFlagChange is one change of a flag on SQLite: "direct" sets the
// override of an open environment (one write transaction); "request" is a
// change request of a restricted environment from request to apply — the
// request, then two approvals from the gate's group, the second applying
// it (three write transactions with their audit entries). cpu-ns/op is
// the CPU time of the whole process per change (internal/cputime).
func BenchmarkFlagChange(b *testing.B) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, rel := restricted(b, &now)
	ctx := context.Background()
	ed := &auth.Principal{TokenID: "tok_e", Name: "ed", Role: auth.Editor}
	ops := []*auth.Principal{{TokenID: "tok_1", Name: "one", Role: auth.Approver, Groups: []string{"ops"}},
		{TokenID: "tok_2", Name: "two", Role: auth.Approver, Groups: []string{"ops"}}}
	states := []string{"DISABLED", "ENABLED"}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cputime.Start()
		for i := range b.N {
			now = now.Add(time.Second)
			if err := a.SetFlagOverride(ctx, ed, domain.FlagOverride{Environment: "development", Key: "banner", State: &states[i%2], VariantsDigest: "v"}); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b)
	})
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cputime.Start()
		for i := range b.N {
			now = now.Add(time.Second)
			fc, err := request(b, a, ed, rel, "banner", domain.FlagFields{State: &states[i%2]})
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range ops {
				if fc, err = a.ApproveFlagChange(ctx, p, "production", fc.ID); err != nil {
					b.Fatal(err)
				}
			}
			if fc.State != domain.FlagChangeApplied {
				b.Fatal(fc.State)
			}
		}
		cpu.Report(b)
	})
}
