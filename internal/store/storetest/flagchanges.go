package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// testFlagChanges: flag change requests are inserted, updated (approvals
// and state) and listed newest first by environment, flag and state;
// duplicates, unknown environments and missing rows have their kinds.
func testFlagChanges(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	on, v := "ENABLED", "blue"
	mk := func(id, env, key string, state domain.FlagChangeState, at time.Time) store.FlagChange {
		return store.FlagChange{ID: id, Environment: env, Key: key, State: state,
			Change:   domain.FlagFields{State: &on},
			Override: domain.FlagFields{State: &on, DefaultVariant: &v, Targeting: json.RawMessage(`{"if":[true,"blue","red"]}`)},
			Release:  "r1", Variants: "vd1", Digest: "fd1", RequestedBy: "alice", RequesterToken: "tok_a",
			Gate:      domain.GateApprovals{Required: 2, Groups: []string{"devops-team"}},
			Approvals: []domain.Approval{}, CreatedAt: at, UpdatedAt: at}
	}
	c1 := mk("fch_1", "prod", "new-ui", domain.FlagChangePending, base)
	c2 := mk("fch_2", "prod", "checkout", domain.FlagChangeApplied, base.Add(time.Minute))
	c3 := mk("fch_3", "staging", "new-ui", domain.FlagChangePending, base.Add(2*time.Minute))
	tx(t, s, func(tx store.Tx) error {
		for _, e := range []string{"staging", "prod"} {
			if err := tx.UpsertEnvironment(ctx, store.Environment{Name: e, Protection: domain.ProtectionRestricted, UpdatedAt: base}); err != nil {
				return err
			}
		}
		for _, c := range []store.FlagChange{c1, c2, c3} {
			if err := tx.InsertFlagChange(ctx, c); err != nil {
				return err
			}
		}
		wantKind(t, "duplicate flag change", tx.InsertFlagChange(ctx, c1), errs.Conflict)
		bad := mk("fch_x", "nowhere", "k", domain.FlagChangePending, base)
		wantKind(t, "flag change in an unknown environment", tx.InsertFlagChange(ctx, bad), errs.NotFound)
		bad.Environment = "prod"
		wantKind(t, "update a missing flag change", tx.UpdateFlagChange(ctx, bad), errs.NotFound)
		return nil
	})

	c1.State, c1.UpdatedAt, c1.Reason = domain.FlagChangeStale, base.Add(5*time.Minute), "the release changed the flag's variants"
	c1.Approvals = append(c1.Approvals, domain.Approval{By: "bob", TokenID: "tok_b", At: base.Add(4 * time.Minute), Digest: "fd1"})
	tx(t, s, func(tx store.Tx) error { return tx.UpdateFlagChange(ctx, c1) })
	one, err := s.GetFlagChange(ctx, "fch_1")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetFlagChange after update", c1, one)
	_, err = s.GetFlagChange(ctx, "fch_404")
	wantKind(t, "GetFlagChange of a missing one", err, errs.NotFound)

	for _, c := range []struct {
		name string
		f    domain.FlagChangeFilter
		want []store.FlagChange
	}{
		{"all, newest first", domain.FlagChangeFilter{}, []store.FlagChange{c3, c2, c1}},
		{"by environment", domain.FlagChangeFilter{Environment: "prod"}, []store.FlagChange{c2, c1}},
		{"by flag", domain.FlagChangeFilter{Key: "new-ui"}, []store.FlagChange{c3, c1}},
		{"by state", domain.FlagChangeFilter{State: domain.FlagChangePending}, []store.FlagChange{c3}},
		{"by environment, flag and state", domain.FlagChangeFilter{Environment: "prod", Key: "new-ui", State: domain.FlagChangeStale}, []store.FlagChange{c1}},
		{"limited", domain.FlagChangeFilter{Limit: 1}, []store.FlagChange{c3}},
		{"none", domain.FlagChangeFilter{Environment: "staging", State: domain.FlagChangeApplied}, nil},
	} {
		got, err := s.ListFlagChanges(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		diff(t, "ListFlagChanges "+c.name, c.want, got)
	}
}
