package app_test

import (
	"context"

	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// flagWorkspace: production is restricted and its promotion block asks for
// two approvals from ops; development is open.
func flagWorkspace(approvals string) map[string][]byte {
	return map[string][]byte{
		"envplane.yaml": []byte(`environments:
  - name: development
    protection: open
  - name: production
    data: live
    protection: restricted
    promotion:
      from: development
` + approvals + `
config:
  layers: [config.yaml]
flags: [flags.yaml]
`),
		"config.yaml": []byte("port: 80\n"),
		"flags.yaml": []byte(`flags:
  banner: {state: ENABLED, variants: {plain: "a", loud: "b"}, defaultVariant: plain}
  theme: {state: ENABLED, variants: {light: "l", dark: "d"}, defaultVariant: dark}
`),
	}
}

var sys = auth.System("test")

// restricted is an App whose production runs the flag workspace's release
// (set straight into the store's environments through a promotion-free
// path: the test gives production's release by a promotion it approves).
func restricted(t testing.TB, now *time.Time) (*app.App, string) {
	t.Helper()
	ctx := context.Background()
	a := newApp(t, now)
	rel, _, err := a.CreateRelease(ctx, sys, flagWorkspace("      approvals: { required: 2, groups: [ops] }"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetRelease(ctx, sys, "development", rel.ID); err != nil {
		t.Fatal(err)
	}
	pr, err := a.Promote(ctx, sys, app.PromoteRequest{Release: rel.ID, Environment: "production"})
	if err != nil {
		t.Fatal(err)
	}
	for i, who := range []string{"p1", "p2"} {
		if pr, err = a.Approve(ctx, &auth.Principal{TokenID: "tok_" + who, Name: who, Role: auth.Approver, Groups: []string{"ops"}}, pr.ID); err != nil {
			t.Fatal(i, err)
		}
	}
	if pr.State != domain.PromotionApplied {
		t.Fatalf("promotion %s", pr.State)
	}
	return a, rel.ID
}

// request opens a change of key in production as p, merged onto the
// override in effect, as the server does.
func request(t testing.TB, a *app.App, p *auth.Principal, release, key string, change domain.FlagFields) (domain.FlagChange, error) {
	t.Helper()
	ctx := context.Background()
	var before *domain.FlagOverride
	o := domain.FlagOverride{Environment: "production", Key: key, VariantsDigest: "v-" + key}
	all, err := a.FlagOverrides(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(all, func(o domain.FlagOverride) bool { return o.Key == key }); i >= 0 {
		o, before = all[i], &all[i]
	}
	if change.State != nil {
		o.State = change.State
	}
	if change.DefaultVariant != nil {
		o.DefaultVariant = change.DefaultVariant
	}
	return a.RequestFlagChange(ctx, p, app.FlagChangeRequest{Environment: "production", Key: key, Change: change, Override: o,
		Before: before, Release: release, VariantsDigest: "v-" + key})
}

func ptr(s string) *string { return &s }

// TestFlagChangeRandomActions drives random requests, approvals,
// rejections and cancellations by random principals and checks after each
// step that no illegal state is reached: a request applies exactly when
// its second counted approval comes, never before; approvals are only
// from ops, never the requester's, never twice; an ended request never
// changes again; every applied request has exactly one apply entry, and
// each flag's override is that of its last applied request.
func TestFlagChangeRandomActions(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, rel := restricted(t, &now)
	ctx := context.Background()
	people := []*auth.Principal{
		{TokenID: "tok_e1", Name: "e1", Role: auth.Editor, Groups: []string{"ops"}},
		{TokenID: "tok_e2", Name: "e2", Role: auth.Editor},
		{TokenID: "tok_a1", Name: "a1", Role: auth.Approver, Groups: []string{"ops"}},
		{TokenID: "tok_a2", Name: "a2", Role: auth.Approver, Groups: []string{"ops", "dev"}},
		{TokenID: "tok_a3", Name: "a3", Role: auth.Approver, Groups: []string{"dev"}},
		{TokenID: "tok_ad", Name: "ad", Role: auth.Admin, Groups: []string{"ops"}},
		{TokenID: "tok_v", Name: "v", Role: auth.Viewer, Groups: []string{"ops"}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ended := map[string]domain.FlagChangeState{}
	lastApplied := map[string]domain.FlagChange{}
	var ids []string
	for step := range 300 {
		now = now.Add(time.Second)
		p := people[rng.IntN(len(people))]
		var what string
		var err error
		var got domain.FlagChange
		switch k := rng.IntN(10); {
		case k <= 1 || len(ids) == 0:
			key := []string{"banner", "theme"}[rng.IntN(2)]
			change := domain.FlagFields{State: ptr([]string{"ENABLED", "DISABLED"}[rng.IntN(2)])}
			what = "request " + key
			if got, err = request(t, a, p, rel, key, change); err == nil {
				ids = append(ids, got.ID)
			}
		default:
			id := ids[rng.IntN(len(ids))]
			switch {
			case k <= 7:
				what = "approve " + id
				got, err = a.ApproveFlagChange(ctx, p, "production", id)
			case k == 8:
				what = "reject " + id
				got, err = a.RejectFlagChange(ctx, p, "production", id, "no")
			default:
				what = "cancel " + id
				got, err = a.CancelFlagChange(ctx, p, "production", id)
			}
		}
		if err != nil && !errs.Is(err, errs.Forbidden) && !errs.Is(err, errs.Conflict) {
			t.Fatalf("step %d: %s by %s: %v", step, what, p.Name, err)
		}
		if err == nil && got.State == domain.FlagChangeApplied {
			lastApplied[got.Key] = got
		}
		all, err := a.ListFlagChanges(ctx, sys, domain.FlagChangeFilter{Environment: "production", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, fc := range all {
			counted := 0
			seen := map[string]bool{}
			for _, ap := range fc.Approvals {
				who := people[slices.IndexFunc(people, func(p *auth.Principal) bool { return p.TokenID == ap.TokenID })]
				if ap.TokenID == fc.RequesterToken || seen[ap.TokenID] || !slices.Contains(who.Groups, "ops") ||
					(who.Role != auth.Approver && who.Role != auth.Admin) || ap.Digest != fc.Digest {
					t.Fatalf("step %d (%s): %s has an approval that must not count: %+v", step, what, fc.ID, ap)
				}
				seen[ap.TokenID] = true
				counted++
			}
			switch {
			case fc.State == domain.FlagChangeApplied && counted != 2:
				t.Fatalf("step %d (%s): %s applied with %d approvals", step, what, fc.ID, counted)
			case fc.State == domain.FlagChangePending && counted >= 2:
				t.Fatalf("step %d (%s): %s pending with %d approvals", step, what, fc.ID, counted)
			}
			if prev, ok := ended[fc.ID]; ok && prev != fc.State {
				t.Fatalf("step %d (%s): %s went from %s to %s", step, what, fc.ID, prev, fc.State)
			}
			if !fc.State.Open() {
				ended[fc.ID] = fc.State
			}
		}
		overrides, err := a.FlagOverrides(ctx, "production")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range overrides {
			if want := lastApplied[o.Key]; want.ID == "" || *o.State != *want.Override.State {
				t.Fatalf("step %d (%s): override of %s is %v, want that of %s", step, what, o.Key, *o.State, want.ID)
			}
		}
		if len(overrides) != len(lastApplied) {
			t.Fatalf("step %d: %d overrides for %d flags changed", step, len(overrides), len(lastApplied))
		}
	}
	applies := map[string]int{}
	entries, _, err := a.ListAudit(ctx, sys, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action == string(domain.ActionFlagChangeApply) {
			applies[e.Target]++
		}
	}
	states := map[domain.FlagChangeState]int{}
	for id, st := range ended {
		states[st]++
		if (st == domain.FlagChangeApplied) != (applies[id] == 1) || applies[id] > 1 {
			t.Errorf("%s is %s with %d apply entries", id, st, applies[id])
		}
	}
	for _, st := range []domain.FlagChangeState{domain.FlagChangeApplied, domain.FlagChangeRejected, domain.FlagChangeCancelled, domain.FlagChangeSuperseded} {
		if states[st] == 0 {
			t.Errorf("the random walk never reached %s (%v): widen it", st, states)
		}
	}
}

// TestFlagChangeSupersededWhenTheOverrideChanged: an approval of a request
// whose flag's override changed since it was asked for (here dropped, as a
// release that changes the flag's variants drops it) ends it superseded,
// committed, and answers 409; nothing applies.
func TestFlagChangeSupersededWhenTheOverrideChanged(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, rel := restricted(t, &now)
	ctx := context.Background()
	ed := &auth.Principal{TokenID: "tok_e", Name: "ed", Role: auth.Editor}
	ops := []*auth.Principal{{TokenID: "tok_1", Name: "one", Role: auth.Approver, Groups: []string{"ops"}},
		{TokenID: "tok_2", Name: "two", Role: auth.Approver, Groups: []string{"ops"}}}
	first, err := request(t, a, ed, rel, "banner", domain.FlagFields{State: ptr("DISABLED")})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ops {
		if first, err = a.ApproveFlagChange(ctx, p, "production", first.ID); err != nil {
			t.Fatal(err)
		}
	}
	second, err := request(t, a, ed, rel, "banner", domain.FlagFields{DefaultVariant: ptr("loud")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.DropFlagOverride(ctx, "production", "banner", "test"); err != nil {
		t.Fatal(err)
	}
	_, err = a.ApproveFlagChange(ctx, ops[0], "production", second.ID)
	if !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "is superseded: the flag's override changed after the request") {
		t.Fatalf("approve: %v", err)
	}
	got, err := a.GetFlagChange(ctx, sys, "production", second.ID)
	if err != nil || got.State != domain.FlagChangeSuperseded || len(got.Approvals) != 0 {
		t.Fatalf("after: %v %+v", err, got)
	}
	if os, _ := a.FlagOverrides(ctx, "production"); len(os) != 0 {
		t.Errorf("overrides %+v", os)
	}
}

// TestFlagChangeRefusals: a request refuses an environment that is not
// restricted and a flag whose override changed since the server checked
// the change; a direct override of a restricted environment is refused.
func TestFlagChangeRefusals(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, rel := restricted(t, &now)
	ctx := context.Background()
	ed := &auth.Principal{TokenID: "tok_e", Name: "ed", Role: auth.Editor}
	for _, c := range []struct {
		name string
		req  app.FlagChangeRequest
		want string
	}{
		{"an open environment", app.FlagChangeRequest{Environment: "development", Key: "banner", Release: rel, VariantsDigest: "v"},
			"is open, not restricted"},
		{"another release", app.FlagChangeRequest{Environment: "production", Key: "banner", Release: "rel_other", VariantsDigest: "v"},
			"changed its release meanwhile"},
		{"an override the store does not have", app.FlagChangeRequest{Environment: "production", Key: "banner", Release: rel, VariantsDigest: "v",
			Before: &domain.FlagOverride{Key: "banner", State: ptr("DISABLED"), UpdatedAt: now}}, "changed meanwhile"},
	} {
		_, err := a.RequestFlagChange(ctx, ed, c.req)
		if !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a conflict saying %q", c.name, err, c.want)
		}
	}
	err := a.SetFlagOverride(ctx, ed, domain.FlagOverride{Environment: "production", Key: "banner", State: ptr("DISABLED"), VariantsDigest: "v"})
	if !errs.Is(err, errs.Conflict) {
		t.Errorf("direct override of production: %v", err)
	}
	if err := a.ClearFlagOverride(ctx, ed, "production", "banner"); !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("removing an override of production directly: %v, want a conflict naming the restriction", err)
	}
	viewer := &auth.Principal{TokenID: "tok_v", Name: "v", Role: auth.Viewer}
	if _, err := request(t, a, viewer, rel, "banner", domain.FlagFields{State: ptr("DISABLED")}); !errs.Is(err, errs.Forbidden) {
		t.Errorf("a viewer's request: %v", err)
	}
	// At most MaxPendingFlagChangesPerRequester per token, at most
	// MaxPendingFlagChanges per environment.
	for i := range app.MaxPendingFlagChangesPerRequester {
		if _, err := request(t, a, ed, rel, fmt.Sprint("f", i), domain.FlagFields{State: ptr("DISABLED")}); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := request(t, a, ed, rel, "f-last", domain.FlagFields{State: ptr("DISABLED")}); !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "the most one token may have") {
		t.Errorf("request %d of one token: %v", app.MaxPendingFlagChangesPerRequester+1, err)
	}
	for i := app.MaxPendingFlagChangesPerRequester; i < app.MaxPendingFlagChanges; i++ {
		other := &auth.Principal{TokenID: fmt.Sprint("tok_e", i), Name: fmt.Sprint("e", i), Role: auth.Editor}
		if _, err := request(t, a, other, rel, "theme", domain.FlagFields{State: ptr("DISABLED")}); err != nil {
			t.Fatal(i, err)
		}
	}
	late := &auth.Principal{TokenID: "tok_late", Name: "late", Role: auth.Editor}
	if _, err := request(t, a, late, rel, "theme", domain.FlagFields{State: ptr("ENABLED")}); !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "pending flag change requests, the most it keeps") {
		t.Errorf("request %d in the environment: %v", app.MaxPendingFlagChanges+1, err)
	}
}
