package storetest

import (
	"testing"
	"time"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// testPromotions: an environment's gates round-trip (and none stays nil);
// promotions are inserted, updated and listed newest first by environment
// and state; unknown references and missing rows have their kinds; a
// failed insert leaves the transaction usable.
func testPromotions(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	gates := &domain.PromotionGates{From: "staging", WaitTimer: 10 * time.Minute,
		Checks:    []domain.GateCheck{{Name: "policy", Type: "policy"}, {Name: "health", Type: "http", URL: "http://127.0.0.1:1/", ExpectStatus: 204}},
		Approvals: &domain.GateApprovals{Required: 2, Groups: []string{"devops-team"}},
		Freeze:    []domain.FreezeWindow{{From: base, To: base.Add(time.Hour), Reason: "launch"}, {Cron: "0 18 * * 5", Duration: time.Hour, Timezone: "Europe/Paris"}},
		Webhooks:  []domain.PromotionHook{{URL: "http://127.0.0.1:1/hook", Secret: "HOOK", Events: []string{"promotion.applied"}}}}
	staging := store.Environment{Name: "staging", Position: 0, UpdatedAt: base}
	prod := store.Environment{Name: "prod", Position: 1, Promoted: true, Gates: gates, UpdatedAt: base}
	mk := func(id, env string, state domain.PromotionState, at time.Time) store.Promotion {
		return store.Promotion{ID: id, Release: "r1", Digest: "sha256:01", Environment: env, From: "staging", State: state,
			RequestedBy: "alice", RequesterToken: "tok_a", Gates: *gates, CreatedAt: at, UpdatedAt: at,
			Checks:    []domain.CheckStatus{{Name: "policy", Type: "policy", Status: "pending"}},
			Checklist: []domain.ChecklistItem{{Item: "notify on-call"}}, Approvals: []domain.Approval{}}
	}
	p1 := mk("pro_1", "prod", domain.PromotionChecking, base)
	p2 := mk("pro_2", "prod", domain.PromotionApplied, base.Add(time.Minute))
	p3 := mk("pro_3", "staging", domain.PromotionAwaitingApproval, base.Add(2*time.Minute))
	tx(t, s, func(tx store.Tx) error {
		for _, e := range []store.Environment{staging, prod} {
			if err := tx.UpsertEnvironment(ctx, e); err != nil {
				return err
			}
		}
		if err := tx.InsertRelease(ctx, release("r1", "sha256:01", base)); err != nil {
			return err
		}
		for _, p := range []store.Promotion{p1, p2, p3} {
			if err := tx.InsertPromotion(ctx, p); err != nil {
				return err
			}
		}
		wantKind(t, "duplicate promotion", tx.InsertPromotion(ctx, p1), errs.Conflict)
		bad := mk("pro_x", "nowhere", domain.PromotionChecking, base)
		wantKind(t, "promotion to an unknown environment", tx.InsertPromotion(ctx, bad), errs.NotFound)
		bad.Environment, bad.Release = "prod", "r404"
		wantKind(t, "promotion of an unknown release", tx.InsertPromotion(ctx, bad), errs.NotFound)
		wantKind(t, "update a missing promotion", tx.UpdatePromotion(ctx, bad), errs.NotFound)
		return nil
	})
	got, err := s.ListEnvironments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "environments with gates", []store.Environment{staging, prod}, got)

	p1.State, p1.UpdatedAt = domain.PromotionAwaitingApproval, base.Add(5*time.Minute)
	p1.Checks[0].Status, p1.Checks[0].LeaseOwner, p1.Checks[0].LeaseUntil = "passed", "replica-1", base.Add(time.Hour)
	p1.Approvals = append(p1.Approvals, domain.Approval{By: "bob", TokenID: "tok_b", At: base.Add(4 * time.Minute), Digest: "sha256:01"})
	tx(t, s, func(tx store.Tx) error { return tx.UpdatePromotion(ctx, p1) })
	one, err := s.GetPromotion(ctx, "pro_1")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetPromotion after update", p1, one)
	_, err = s.GetPromotion(ctx, "pro_404")
	wantKind(t, "GetPromotion of a missing one", err, errs.NotFound)

	for _, c := range []struct {
		name string
		f    domain.PromotionFilter
		want []store.Promotion
	}{
		{"all, newest first", domain.PromotionFilter{}, []store.Promotion{p3, p2, p1}},
		{"by environment", domain.PromotionFilter{Environment: "prod"}, []store.Promotion{p2, p1}},
		{"by state", domain.PromotionFilter{State: domain.PromotionAwaitingApproval}, []store.Promotion{p3, p1}},
		{"open in prod", domain.PromotionFilter{Environment: "prod", OpenOnly: true}, []store.Promotion{p1}},
		{"limited", domain.PromotionFilter{Limit: 1}, []store.Promotion{p3}},
		{"none", domain.PromotionFilter{Environment: "staging", State: domain.PromotionApplied}, nil},
	} {
		got, err := s.ListPromotions(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		diff(t, "ListPromotions "+c.name, c.want, got)
	}
}
