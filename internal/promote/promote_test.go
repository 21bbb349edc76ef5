package promote_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/promote"
)

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

var rel = domain.Release{ID: "rel_1", Digest: "sha256:aa"}

func production() domain.PromotionGates {
	return domain.PromotionGates{
		From:      "staging",
		Checks:    []domain.GateCheck{{Name: "policy", Type: domain.CheckPolicy}, {Name: "smoke", Type: domain.CheckExternal}},
		Checklist: []string{"Rollback plan documented"},
		Approvals: &domain.GateApprovals{Required: 2, Groups: []string{"devops-team", "senior-developers"}},
		WaitTimer: 10 * time.Minute,
	}
}

func open(g domain.PromotionGates) domain.Promotion {
	return promote.Open("pro_1", rel, "production", g, "alice (token tok_a)", "tok_a", false, false, t0)
}

func TestHappyPath(t *testing.T) {
	p := open(production())
	step := func(now time.Time) promote.Step {
		t.Helper()
		st, err := promote.Advance(&p, now)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := step(t0); st.Changed || p.State != domain.PromotionChecking {
		t.Fatalf("no check passed yet: %+v %s", st, p.State)
	}
	p.Checks[0].Status = domain.CheckPassed
	if err := promote.Report(&p, "smoke", "passed", "https://ci/1", "", promote.Principal{Actor: "ci"}, t0); err != nil {
		t.Fatal(err)
	}
	step(t0)
	if p.State != domain.PromotionAwaitingApproval {
		t.Fatalf("state %s", p.State)
	}
	bob := promote.Principal{TokenID: "tok_b", Actor: "bob", Groups: []string{"devops-team"}}
	carol := promote.Principal{TokenID: "tok_c", Actor: "carol", Groups: []string{"senior-developers"}}
	for _, who := range []promote.Principal{bob, carol} {
		if err := promote.Approve(&p, who, t0); err != nil {
			t.Fatal(err)
		}
	}
	step(t0)
	if p.State != domain.PromotionAwaitingApproval {
		t.Fatalf("the checklist is not ticked: state %s", p.State)
	}
	if err := promote.Tick(&p, 0, bob, t0); err != nil {
		t.Fatal(err)
	}
	step(t0)
	if p.State != domain.PromotionApproved || !p.WaitUntil.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("state %s waitUntil %s", p.State, p.WaitUntil)
	}
	if st := step(t0.Add(9 * time.Minute)); st.Apply {
		t.Fatal("applies before the wait timer ran out")
	}
	if st := step(t0.Add(10 * time.Minute)); !st.Apply {
		t.Fatal("does not apply when the timer ran out")
	}
}

func TestRefusals(t *testing.T) {
	requester := promote.Principal{TokenID: "tok_a", Actor: "alice", Groups: []string{"devops-team"}}
	outsider := promote.Principal{TokenID: "tok_x", Actor: "xavier", Groups: []string{"marketing"}}
	bob := promote.Principal{TokenID: "tok_b", Actor: "bob", Groups: []string{"devops-team"}}
	tests := []struct {
		name string
		do   func(p *domain.Promotion) error
		kind errs.Kind
		msg  string
	}{
		{"self approval", func(p *domain.Promotion) error { return promote.Approve(p, requester, t0) }, errs.Forbidden,
			"gate approvals: the requester may not approve their own promotion (allowSelfApproval is false)"},
		{"outside the groups", func(p *domain.Promotion) error { return promote.Approve(p, outsider, t0) }, errs.Forbidden,
			"gate approvals: approvals count only from members of devops-team, senior-developers; this token's groups are [marketing]"},
		{"twice", func(p *domain.Promotion) error {
			_ = promote.Approve(p, bob, t0)
			return promote.Approve(p, bob, t0)
		}, errs.Conflict, "gate approvals: bob already approved this promotion"},
		{"ended", func(p *domain.Promotion) error {
			p.State = domain.PromotionRejected
			return promote.Approve(p, bob, t0)
		}, errs.Conflict, "promotion pro_1 is rejected: it can no longer be approved"},
		{"report a built-in check", func(p *domain.Promotion) error { return promote.Report(p, "policy", "passed", "", "", bob, t0) },
			errs.Conflict, "gate checks: check \"policy\" is of type policy: the server runs it, CI cannot report it"},
		{"report an unknown check", func(p *domain.Promotion) error { return promote.Report(p, "nope", "passed", "", "", bob, t0) },
			errs.NotFound, "gate checks: promotion pro_1 has no check \"nope\" (its checks: policy, smoke)"},
		{"report a bad status", func(p *domain.Promotion) error { return promote.Report(p, "smoke", "green", "", "", bob, t0) },
			errs.Invalid, "a check's status is passed or failed"},
		{"tick out of range", func(p *domain.Promotion) error { return promote.Tick(p, 3, bob, t0) },
			errs.NotFound, "gate checklist: promotion pro_1 has 1 checklist items (0 to 0)"},
		{"cancel another's", func(p *domain.Promotion) error { return promote.Cancel(p, bob, t0) },
			errs.Forbidden, "only the requester of promotion pro_1 or an admin may cancel it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := open(production())
			err := tt.do(&p)
			kind, msg, _ := errs.Public(err)
			if diff := cmp.Diff([]any{tt.kind, tt.msg}, []any{kind, msg}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestFailedCheckFails(t *testing.T) {
	p := open(production())
	if err := promote.Report(&p, "smoke", "failed", "", "3 tests failed", promote.Principal{Actor: "ci"}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := promote.Advance(&p, t0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"failed", "gate checks: check smoke failed: 3 tests failed"}, []string{string(p.State), p.Reason}); diff != "" {
		t.Error(diff)
	}
}

func TestEmergencySkipsOnlyTheTimer(t *testing.T) {
	g := production()
	g.Checks, g.Checklist, g.Approvals = nil, nil, nil
	g.Freeze = []domain.FreezeWindow{{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Reason: "release freeze"}}
	p := promote.Open("pro_1", rel, "production", g, "alice", "tok_a", true, true, t0)
	st, err := promote.Advance(&p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Apply || st.Freeze == nil || !st.Freeze.Until.Equal(t0.Add(time.Hour)) || !p.WaitUntil.IsZero() {
		t.Fatalf("emergency: step %+v waitUntil %s: the timer is skipped, the freeze holds", st, p.WaitUntil)
	}
	if st, _ := promote.Advance(&p, t0.Add(time.Hour)); !st.Apply {
		t.Fatal("does not apply after the freeze")
	}
}

// TestProperties drives random operations and checks the invariants: an
// ended promotion never changes, a promotion is only ready to apply when
// every gate passed, and approvals come from distinct eligible tokens.
func TestProperties(t *testing.T) {
	people := []promote.Principal{
		{TokenID: "tok_a", Actor: "alice", Groups: []string{"devops-team"}},
		{TokenID: "tok_b", Actor: "bob", Groups: []string{"devops-team"}},
		{TokenID: "tok_c", Actor: "carol", Groups: []string{"senior-developers"}},
		{TokenID: "tok_x", Actor: "xavier"},
		{TokenID: "tok_z", Actor: "zoe", Admin: true},
	}
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		g := production()
		g.Freeze = []domain.FreezeWindow{{Cron: "0 18 * * 5", Duration: 60 * time.Hour, Reason: "weekend"}}
		p := open(g)
		now := t0
		for range 40 {
			before := p
			who := people[r.IntN(len(people))]
			switch r.IntN(8) {
			case 0:
				_ = promote.Approve(&p, who, now)
			case 1:
				_ = promote.Report(&p, "smoke", []string{"passed", "failed"}[r.IntN(2)], "", "", who, now)
			case 2:
				_ = promote.Tick(&p, 0, who, now)
			case 3:
				if r.IntN(10) == 0 {
					_ = promote.Cancel(&p, who, now)
				}
			case 4:
				if p.State.Open() {
					p.Checks[0].Status = domain.CheckPassed
				}
			default:
				now = now.Add(time.Duration(r.IntN(180)) * time.Minute)
			}
			st, err := promote.Advance(&p, now)
			if err != nil {
				t.Fatal(err)
			}
			if !before.State.Open() && !cmp.Equal(before, p) {
				t.Fatalf("seed %d: an ended promotion (%s) changed to %s", seed, before.State, p.State)
			}
			seen := map[string]bool{}
			for _, a := range p.Approvals {
				if seen[a.TokenID] || a.TokenID == "tok_a" || a.TokenID == "tok_x" {
					t.Fatalf("seed %d: approval %+v should not count", seed, a)
				}
				seen[a.TokenID] = true
			}
			if st.Apply {
				f, _ := promote.FrozenAt(g.Freeze, now)
				if len(p.Approvals) < 2 || !p.Checklist[0].Done || p.Checks[0].Status != "passed" || p.Checks[1].Status != "passed" ||
					now.Before(p.WaitUntil) || f != nil {
					t.Fatalf("seed %d: ready to apply with a gate not passed at %s: %+v", seed, now, p)
				}
				break
			}
		}
	}
}
