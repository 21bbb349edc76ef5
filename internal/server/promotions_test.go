package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/server"
)

type promotion struct {
	ID, Release, Environment, From, State, RequestedBy, Reason, Previous string
	Rollback                                                             bool
	Gates                                                                struct {
		Checks []struct {
			Name, Type, Status, URL, Message string
		}
		Checklist []struct {
			Item string
			Done bool
			By   string
		}
		Approvals struct {
			Required int
			Groups   []string
			Given    []struct{ By string }
		}
	}
}

func (r response) promotion(t testing.TB) promotion {
	t.Helper()
	var p promotion
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return p
}

func (h *harness) envRelease(env string) string {
	h.t.Helper()
	var out struct {
		Environments []struct{ Name, Release string }
	}
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/environments", adminToken, nil).body, &out); err != nil {
		h.t.Fatal(err)
	}
	for _, e := range out.Environments {
		if e.Name == env {
			return e.Release
		}
	}
	return ""
}

func (h *harness) auditActions(target string) []string {
	h.t.Helper()
	var out struct {
		Entries []struct{ Action, Target string }
	}
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/audit", adminToken, nil).body, &out); err != nil {
		h.t.Fatal(err)
	}
	var got []string
	for _, e := range out.Entries {
		if e.Target == target {
			got = append(got, e.Action)
		}
	}
	return got
}

func TestPromotionThroughItsGates(t *testing.T) {
	h, rel := seeded(t)
	approver, _ := h.token("bob", "approver")
	editor, _ := h.token("ci", "editor")
	id := h.openPromotion(rel)
	p := h.must(200, "GET", "/api/v1/promotions/"+id, editor, nil).promotion(t)
	if p.State != "checking" || p.From != "staging" || p.Rollback || p.Gates.Approvals.Required != 1 {
		t.Fatalf("opened: %+v", p)
	}
	// Each refusal names its gate and why.
	for _, c := range []struct {
		method, path, token string
		body                any
		status              int
		msg                 string
	}{
		{"POST", "/approve", adminToken, nil, 403, "gate approvals: the requester may not approve their own promotion (allowSelfApproval is false)"},
		{"PUT", "/checks/smoke", editor, map[string]string{"status": "green"}, 400, "a check's status is passed or failed"},
		{"PUT", "/checklist/5", editor, map[string]bool{"done": true}, 404, "gate checklist: promotion " + id + " has 1 checklist items (0 to 0)"},
		{"POST", "/cancel", editor, nil, 403, "only the requester of promotion " + id + " or an admin may cancel it"},
	} {
		r := h.must(c.status, c.method, "/api/v1/promotions/"+id+c.path, c.token, c.body)
		if got := r.err(t).Message; got != c.msg {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.msg)
		}
	}
	p = h.must(200, "PUT", "/api/v1/promotions/"+id+"/checks/smoke", editor, map[string]string{"status": "passed", "url": "https://ci.example.com/1"}).promotion(t)
	if p.State != "awaiting-approval" {
		t.Fatalf("after the check: %s", p.State)
	}
	p = h.must(200, "POST", "/api/v1/promotions/"+id+"/approve", approver, nil).promotion(t)
	if p.State != "awaiting-approval" || len(p.Gates.Approvals.Given) != 1 {
		t.Fatalf("approved with the checklist open: %+v", p)
	}
	if h.envRelease("production") != "" {
		t.Fatal("production moved before its gates passed")
	}
	p = h.must(200, "PUT", "/api/v1/promotions/"+id+"/checklist/0", editor, map[string]bool{"done": true}).promotion(t)
	if p.State != "applied" || h.envRelease("production") != rel {
		t.Fatalf("all gates passed: state %s, production runs %q", p.State, h.envRelease("production"))
	}
	want := []string{"promotion.create", "promotion.check", "promotion.advance", "promotion.approve", "promotion.checklist",
		"promotion.advance", // awaiting-approval → approved, in the same step as the apply
		"promotion.apply"}
	if diff := cmp.Diff(want, h.auditActions(id)); diff != "" {
		t.Errorf("audit (-want +got)\n%s", diff)
	}
	r := h.must(409, "POST", "/api/v1/promotions/"+id+"/approve", approver, nil)
	if got := r.err(t).Message; got != "promotion "+id+" is applied: it can no longer be approved" {
		t.Error(got)
	}
	r = h.must(409, "POST", "/api/v1/promotions", editor, map[string]string{"release": rel, "environment": "production"})
	if got := r.err(t).Message; got != "gate from: release "+rel+" is already current in production" {
		t.Error(got)
	}
	// Direct sets stay refused where promotions apply.
	h.must(409, "PUT", "/api/v1/environments/production/release", adminToken, map[string]string{"release": rel})
}

func TestPromotionRefusedOutsideThePath(t *testing.T) {
	h, rel := seeded(t)
	newer := h.upload(shop(8081))
	for _, c := range []struct {
		body   map[string]string
		status int
		msg    string
	}{
		{map[string]string{"release": newer, "environment": "production"}, 409,
			"gate from: release " + newer + " is not current in staging (it runs " + rel + ") and was never current in production, so it is no rollback either"},
		{map[string]string{"release": rel, "environment": "development"}, 409,
			`environment "development" has no promotion block: its release is set directly (PUT /api/v1/environments/development/release)`},
		{map[string]string{"release": rel, "environment": "qa"}, 404, `unknown environment "qa"`},
		{map[string]string{"environment": "production"}, 400, "release: required: the ID of the release to promote"},
	} {
		r := h.must(c.status, "POST", "/api/v1/promotions", adminToken, c.body)
		e := r.err(t)
		got := e.Message
		if len(e.Fields) > 0 {
			got = e.Fields[0].Field + ": " + e.Fields[0].Message
		}
		if got != c.msg {
			t.Errorf("%v: %q, want %q", c.body, got, c.msg)
		}
	}
}

// TestLastApprovalsApplyOnce: approvers approving at the same moment, any
// of whom completes the gates, apply the promotion exactly once.
func TestLastApprovalsApplyOnce(t *testing.T) {
	h, rel := seeded(t)
	id := h.openPromotion(rel)
	h.must(200, "PUT", "/api/v1/promotions/"+id+"/checks/smoke", adminToken, map[string]string{"status": "passed"})
	h.must(200, "PUT", "/api/v1/promotions/"+id+"/checklist/0", adminToken, map[string]bool{"done": true})
	const n = 8
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i], _ = h.token("approver "+itoa(i), "approver")
	}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = h.call("POST", "/api/v1/promotions/"+id+"/approve", tokens[i], nil).status
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
		default:
			t.Errorf("status %d", s)
		}
	}
	applies := 0
	for _, a := range h.auditActions(id) {
		if a == "promotion.apply" {
			applies++
		}
	}
	if ok != 1 || applies != 1 {
		t.Errorf("%d approvals answered 200 and %d applies recorded, want 1 and 1 (%v)", ok, applies, statuses)
	}
	var hist int
	for _, a := range h.auditActions("production") {
		if a == "environment.set-release" {
			hist++
		}
	}
	if hist != 0 || h.envRelease("production") != rel {
		t.Errorf("production runs %q", h.envRelease("production"))
	}
}

// gated is a workspace whose production runs the built-in checks and tells
// a webhook; its production config needs a secret and logs at debug, which
// its policy forbids.
func gated(hook string, level string) map[string]string {
	return map[string]string{
		"envplane.yaml": `name: gated
environments:
  - name: staging
  - name: production
    data: live
    protection: restricted
    promotion:
      from: staging
      checks: [policy, references]
      webhooks:
        - {url: "` + hook + `", secret: HOOK_SECRET, events: [promotion.created, promotion.applied, promotion.failed]}
config:
  layers:
    - config/{env}.yaml
policies:
  - name: production-logging
    environments: [production]
    rule: config.logging.level in ["warn", "error"]
    message: production must not log below warn
`,
		"config/staging.yaml":    "logging:\n  level: debug\n",
		"config/production.yaml": "logging:\n  level: " + level + "\ndatabase:\n  password: ${DB_PASSWORD}\n",
	}
}

type delivery struct {
	event, signature, body string
}

func hookReceiver(t *testing.T) (*httptest.Server, func() []delivery) {
	var mu sync.Mutex
	var got []delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Get("X-Envplane-Event"), r.Header.Get("X-Envplane-Signature"), string(b)})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), got...)
	}
}

// waitState polls a promotion until it reaches state (bounded).
func (h *harness) waitState(id, state string) promotion {
	h.t.Helper()
	var p promotion
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p = h.must(200, "GET", "/api/v1/promotions/"+id, adminToken, nil).promotion(h.t); p.State == state {
			return p
		}
	}
	h.t.Fatalf("promotion %s stayed %s, want %s: %+v", id, p.State, state, p)
	return p
}

func TestBuiltInChecksAndWebhooks(t *testing.T) {
	hook, deliveries := hookReceiver(t)
	h := start(t, func(o *server.Options) { o.PromotionInterval = 20 * time.Millisecond })
	h.upload(gated(hook.URL, "warn")) // brings the environments into being
	h.must(200, "PUT", "/api/v1/environments/production/secrets/HOOK_SECRET", adminToken, map[string]string{"value": "hook-key"})
	var failed []string
	for _, c := range []struct{ level, check, msg string }{
		{"warn", "references", "DB_PASSWORD"}, // nothing sets it in production yet
		{"debug", "policy", "production must not log below warn"},
	} {
		bad := h.upload(gated(hook.URL, c.level))
		h.setRelease("staging", bad)
		id := h.openPromotion(bad)
		failed = append(failed, id)
		p := h.waitState(id, "failed")
		for _, got := range p.Gates.Checks {
			if got.Name == c.check && (got.Status != "failed" || !strings.Contains(got.Message, c.msg)) {
				t.Errorf("check %s: %s %q", got.Name, got.Status, got.Message)
			}
		}
		if !strings.HasPrefix(p.Reason, "gate checks: check "+c.check+" failed: ") {
			t.Errorf("reason %q", p.Reason)
		}
		if c.check == "references" {
			h.must(200, "PUT", "/api/v1/environments/production/secrets/DB_PASSWORD", adminToken, map[string]string{"value": "pw"})
		}
	}

	good := h.upload(gated(hook.URL, "warn"))
	h.setRelease("staging", good)
	id2 := h.openPromotion(good)
	h.waitState(id2, "applied")
	if h.envRelease("production") != good {
		t.Fatal("production did not move")
	}
	var events []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(events) < 6; time.Sleep(20 * time.Millisecond) {
		events = events[:0]
		for _, d := range deliveries() {
			mac := hmac.New(sha256.New, []byte("hook-key"))
			mac.Write([]byte(d.body))
			if d.signature != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
				t.Fatalf("bad signature on %s", d.body)
			}
			var b struct{ Event, Promotion string }
			_ = json.Unmarshal([]byte(d.body), &b)
			if b.Event != d.event {
				t.Fatalf("header %s, body %s", d.event, b.Event)
			}
			events = append(events, b.Event+" "+b.Promotion)
		}
	}
	want := []string{"promotion.created " + failed[0], "promotion.failed " + failed[0], "promotion.created " + failed[1],
		"promotion.failed " + failed[1], "promotion.created " + id2, "promotion.applied " + id2}
	if diff := cmp.Diff(want, events, cmpSorted); diff != "" {
		t.Errorf("webhooks (-want +got)\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestRollbackAndSupersede(t *testing.T) {
	h, rel := seeded(t)
	pass := func(id string) {
		approver, _ := h.token("approver", "approver")
		h.must(200, "PUT", "/api/v1/promotions/"+id+"/checks/smoke", adminToken, map[string]string{"status": "passed"})
		h.must(200, "PUT", "/api/v1/promotions/"+id+"/checklist/0", adminToken, map[string]bool{"done": true})
		h.must(200, "POST", "/api/v1/promotions/"+id+"/approve", approver, nil)
	}
	first := h.openPromotion(rel)
	pass(first)
	newer := h.upload(shop(8081))
	h.setRelease("staging", newer)
	second := h.openPromotion(newer)
	stale := h.openPromotion(newer)
	pass(second)
	if p := h.waitState(stale, "superseded"); p.Reason != "superseded by promotion "+second {
		t.Errorf("reason %q", p.Reason)
	}
	// rel is no longer current in staging, but was in production: a rollback.
	r := h.must(201, "POST", "/api/v1/promotions", adminToken, map[string]any{"release": rel, "environment": "production"}).promotion(t)
	if !r.Rollback {
		t.Error("not marked as a rollback")
	}
	pass(r.ID)
	if p := h.waitState(r.ID, "applied"); p.Previous != newer || h.envRelease("production") != rel {
		t.Errorf("rollback applied over %q; production runs %q", p.Previous, h.envRelease("production"))
	}
}

func TestPromotionEventsOnTheTargetStream(t *testing.T) {
	h, rel := seeded(t)
	req, _ := http.NewRequest("GET", h.hs.URL+"/api/v1/environments/production/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	id := h.openPromotion(rel)
	buf := make([]byte, 4096)
	var got strings.Builder
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(got.String(), `"promotion":"`+id+`"`) && time.Now().Before(deadline) {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(got.String(), "event: promotion\ndata: {\"environment\":\"production\",\"promotion\":\""+id+"\",\"state\":\"checking\"}") {
		t.Errorf("stream:\n%s", got.String())
	}
	if strings.Count(got.String(), "event: promotion") != 1 {
		t.Errorf("the event came more than once:\n%s", got.String())
	}
}
