package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/store/sqlite"
)

// pipeline is a workspace whose staging takes every release of
// development by itself once its policy check passes, and whose
// production asks for extra (a check, then approvals).
func pipeline(port int, productionChecks string) map[string]string {
	return map[string]string{
		"envplane.yaml": `name: pipeline
environments:
  - development
  - name: staging
    promotion: { from: development, auto: true, checks: [policy] }
  - name: production
    promotion:
      from: staging
      checks: ` + productionChecks + `
      approvals: { required: 1 }
config:
  layers:
    - config/{env}.yaml
policies:
  - name: port
    rule: config.port > 1024
    message: unprivileged ports only
`,
		"config/development.yaml": "port: " + itoa(port) + "\n",
		"config/staging.yaml":     "port: " + itoa(port) + "\n",
		"config/production.yaml":  "port: 8080\n",
	}
}

type auditEntry struct {
	Action, Target, Actor string
	Details               map[string]any
}

// steps is the audit log of target, one line per entry: the action and,
// for the runner's and gates' transitions, what changed.
func (h *harness) steps(target string) []string {
	h.t.Helper()
	var out struct{ Entries []auditEntry }
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/audit", adminToken, nil).body, &out); err != nil {
		h.t.Fatal(err)
	}
	var got []string
	for _, e := range out.Entries {
		if e.Target != target {
			continue
		}
		s := e.Action
		switch e.Action {
		case "promotion.advance":
			s += fmt.Sprintf(" %v→%v", e.Details["from"], e.Details["to"])
		case "promotion.approve":
			s += " by " + e.Actor
		case "promotion.check":
			s += fmt.Sprintf(" %v %v", e.Details["check"], e.Details["status"])
		}
		got = append(got, s)
	}
	return got
}

// promotionsInto lists the promotions into env.
func (h *harness) promotionsInto(env string) []promotion {
	h.t.Helper()
	var out struct{ Promotions []promotion }
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/promotions?environment="+env, adminToken, nil).body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out.Promotions
}

// TestAutoPromotionOnce: a release set current in development is promoted
// into staging by itself once its policy check passes, exactly once, and a
// release that fails the check stays out.
func TestAutoPromotionOnce(t *testing.T) {
	h := start(t, func(o *server.Options) { o.PromotionInterval = 10 * time.Millisecond })
	good := h.upload(pipeline(8081, "[policy]"))
	h.setRelease("development", good)
	eventually(t, func() bool { return h.envRelease("staging") == good })
	bad := h.upload(pipeline(80, "[policy]"))
	h.setRelease("development", bad)
	// Wait for the runner to decide on it (a loaded machine can take far
	// longer than a few passes), then give it ten more passes in which a
	// duplicate would show up.
	eventually(t, func() bool {
		for _, p := range h.promotionsInto("staging") {
			if p.Release == bad && p.State != "checking" {
				return true
			}
		}
		return false
	})
	time.Sleep(100 * time.Millisecond)
	ps := h.promotionsInto("staging")
	if len(ps) != 2 {
		t.Fatalf("%d promotions into staging, want 2: %+v", len(ps), ps)
	}
	got := map[string]string{}
	for _, p := range ps {
		got[p.Release] = p.State + " " + p.RequestedBy
		if p.Release == good {
			if diff := cmp.Diff([]string{"promotion.create", "promotion.check policy passed", "promotion.advance checking→approved", "promotion.apply"}, h.steps(p.ID)); diff != "" {
				t.Errorf("audit of %s (-want +got)\n%s", p.ID, diff)
			}
		}
	}
	want := map[string]string{good: "applied envplane (promotion runner)", bad: "failed envplane (promotion runner)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("promotions into staging (-want +got)\n%s", diff)
	}
	if h.envRelease("staging") != good {
		t.Errorf("staging runs %s, want %s", h.envRelease("staging"), good)
	}
}

// TestReplicasApplyOnceOnPostgres: two servers on one database, both
// running the promotion runner, race for the policy check while two
// approvers approve through each replica at once. The promotion is applied
// once and each step's audit entry appears once.
func TestReplicasApplyOnceOnPostgres(t *testing.T) {
	u := pgtest.URL(t)
	replica := func() *harness {
		st, err := postgres.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		return startOn(t, st, func(o *server.Options) { o.PromotionInterval = 5 * time.Millisecond })
	}
	a, b := replica(), replica()
	for round := range 5 {
		rel := a.upload(pipeline(8000+round, "[policy]"))
		a.setRelease("development", rel)
		eventually(t, func() bool { return b.envRelease("staging") == rel })
		ann, _ := a.token(fmt.Sprintf("ann %d", round), "approver")
		ben, _ := a.token(fmt.Sprintf("ben %d", round), "approver")
		id := a.openPromotion(rel)
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, r := range []struct {
			h   *harness
			tok string
		}{{a, ann}, {b, ben}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = r.h.call("POST", "/api/v1/promotions/"+id+"/approve", r.tok, nil).status
			}()
		}
		wg.Wait()
		for _, s := range statuses {
			if s != http.StatusOK && s != http.StatusConflict {
				t.Fatalf("approve: %v", statuses)
			}
		}
		b.waitState(id, "applied")
		time.Sleep(30 * time.Millisecond) // more runner passes on both
		counts := map[string]int{}
		for _, s := range a.steps(id) {
			counts[s]++
		}
		for s, n := range counts {
			if n != 1 {
				t.Errorf("round %d: %q recorded %d times: %v", round, s, n, a.steps(id))
			}
		}
		for _, s := range []string{"promotion.create", "promotion.check policy passed", "promotion.apply"} {
			if counts[s] != 1 {
				t.Errorf("round %d: no %q: %v", round, s, a.steps(id))
			}
		}
		// a learns of b's apply through the store's notifications.
		eventually(t, func() bool { return a.envRelease("production") == rel })
	}
	a.must(200, "GET", "/api/v1/audit/verify", adminToken, nil)
}

// TestRestartResumesChecking stops a server while it holds the lease of
// an HTTP check; the next server, once the lease ran out, runs the check
// again and the promotion goes on.
func TestRestartResumesChecking(t *testing.T) {
	entered := make(chan struct{}, 10)
	var mu sync.Mutex
	hang := true
	ci := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hang
		mu.Unlock()
		if h {
			entered <- struct{}{}
			<-r.Context().Done() // the first server dies mid-check
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ci.Close)
	path := filepath.Join(t.TempDir(), "envplane.db")
	open := func(clock func() time.Time) *harness {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return startOn(t, st, func(o *server.Options) {
			o.PromotionInterval = 10 * time.Millisecond
			o.Clock = clock
		})
	}
	first := open(nil)
	rel := first.upload(pipeline(8081, `[{name: ci, type: http, url: "`+ci.URL+`"}]`))
	first.setRelease("development", rel)
	eventually(t, func() bool { return first.envRelease("staging") == rel })
	id := first.openPromotion(rel)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the check was never called")
	}
	if c := first.must(200, "GET", "/api/v1/promotions/"+id, adminToken, nil).promotion(t).Gates.Checks[0]; c.Status != "running" {
		t.Fatalf("check %+v, want running", c)
	}
	mu.Lock()
	hang = false
	mu.Unlock()
	first.srv.Close()
	first.hs.Close()
	first.st.Close()

	// The next server starts after the lease (2 minutes) ran out.
	later := func() time.Time { return time.Now().Add(3 * time.Minute) }
	second := open(later)
	p := second.waitState(id, "awaiting-approval")
	if c := p.Gates.Checks[0]; c.Status != "passed" {
		t.Errorf("check %+v, want passed", c)
	}
	approver, approverID := second.token("approver", "approver")
	second.must(200, "POST", "/api/v1/promotions/"+id+"/approve", approver, nil)
	second.waitState(id, "applied")
	if diff := cmp.Diff([]string{"promotion.create", "promotion.check ci passed", "promotion.advance checking→awaiting-approval", "promotion.approve by approver (token " + approverID + ")",
		"promotion.advance awaiting-approval→approved", "promotion.apply"},
		second.steps(id)); diff != "" {
		t.Errorf("audit (-want +got)\n%s", diff)
	}
}
