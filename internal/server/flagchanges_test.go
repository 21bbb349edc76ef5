package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

// gatedShop is the shop workspace with production's approvals set to
// approvals (a YAML flow mapping).
func gatedShop(approvals string, mod func(files map[string]string)) map[string]string {
	files := shop(8080)
	if approvals == "" { // no approvals block
		files["envplane.yaml"] = strings.Replace(files["envplane.yaml"], "      approvals: { required: 1 }\n", "", 1)
	} else {
		files["envplane.yaml"] = strings.Replace(files["envplane.yaml"], "approvals: { required: 1 }", "approvals: "+approvals, 1)
	}
	if mod != nil {
		mod(files)
	}
	return files
}

// groupToken creates a token of role in groups and returns its text.
func (h *harness) groupToken(name, role string, groups ...string) string {
	h.t.Helper()
	return h.must(http.StatusCreated, "POST", "/api/v1/tokens", adminToken,
		map[string]any{"name": name, "role": role, "environments": []string{}, "groups": groups}).json(h.t)["token"].(string)
}

// promoteProd makes release current in production through its gates: the
// smoke check, the checklist, then an approval by each of approvers.
func (h *harness) promoteProd(release string, approvers ...string) {
	h.t.Helper()
	h.setRelease("staging", release)
	id := h.openPromotion(release)
	h.must(http.StatusOK, "PUT", "/api/v1/promotions/"+id+"/checks/smoke", adminToken, map[string]string{"status": "passed"})
	h.must(http.StatusOK, "PUT", "/api/v1/promotions/"+id+"/checklist/0", adminToken, map[string]bool{"done": true})
	for _, a := range approvers {
		h.must(http.StatusOK, "POST", "/api/v1/promotions/"+id+"/approve", a, nil)
	}
	if last := h.must(http.StatusOK, "GET", "/api/v1/promotions/"+id, adminToken, nil).json(h.t); last["state"] != "applied" {
		h.t.Fatalf("promotion of %s into production: %v", release, last["state"])
	}
}

const changes = "/api/v1/environments/production/flags/changes/"

// requestChange PATCHes flag key of production as token and returns the
// change request the 202 answers.
func (h *harness) requestChange(token, key string, body map[string]any) map[string]any {
	h.t.Helper()
	return h.must(http.StatusAccepted, "PATCH", "/api/v1/environments/production/flags/"+key, token, body).json(h.t)
}

func flagOf(t *testing.T, h *harness, env, key string) map[string]any {
	t.Helper()
	for _, f := range h.must(http.StatusOK, "GET", "/api/v1/environments/"+env+"/flags", adminToken, nil).json(t)["flags"].([]any) {
		if f := f.(map[string]any); f["key"] == key {
			return f
		}
	}
	t.Fatalf("no flag %s in %s", key, env)
	return nil
}

// TestFlagChangeRequests walks a change of a flag of a restricted
// environment through the approval gate production's promotion block
// gives: the 202 shape, every refusal with its gate, the apply on the
// second counted approval (and not before), the audit entries naming the
// request, and the SSE event.
func TestFlagChangeRequests(t *testing.T) {
	h := start(t)
	rel := h.upload(gatedShop("{ required: 2, groups: [devops-team] }", nil))
	h.setRelease("development", rel)
	bob := h.groupToken("bob", "approver", "devops-team")
	carol := h.groupToken("carol", "approver", "devops-team")
	eve := h.groupToken("eve", "approver", "marketing")
	h.promoteProd(rel, bob, carol)
	editor := h.groupToken("ed", "editor", "devops-team")
	events := subscribe(t, h, "production")

	// Validated exactly as a direct change: 422 naming the field, 404.
	r := h.must(http.StatusUnprocessableEntity, "PATCH", "/api/v1/environments/production/flags/banner", editor, map[string]any{"defaultVariant": "nope"})
	if got := r.err(t).fieldNames(); !cmp.Equal(got, []string{"defaultVariant"}) {
		t.Errorf("fields %v", got)
	}
	h.must(http.StatusNotFound, "PATCH", "/api/v1/environments/production/flags/nope", editor, map[string]any{"state": "DISABLED"})
	h.must(http.StatusBadRequest, "PATCH", "/api/v1/environments/production/flags/banner", editor, map[string]any{})

	fc := h.requestChange(editor, "banner", map[string]any{"defaultVariant": "loud"})
	id := fc["id"].(string)
	want := map[string]any{"id": id, "environment": "production", "flag": "banner", "change": map[string]any{"defaultVariant": "loud"},
		"state": "pending", "requestedBy": "ed (token " + strings.TrimPrefix(fc["requestedBy"].(string), "ed (token "),
		"approvals": map[string]any{"required": 2.0, "groups": []any{"devops-team"}, "given": []any{}}}
	for k, v := range want {
		if diff := cmp.Diff(v, fc[k]); diff != "" {
			t.Errorf("change request %s (-want +got):\n%s", k, diff)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fc["createdAt"].(string)); err != nil {
		t.Errorf("createdAt %v", fc["createdAt"])
	}
	awaitLine(t, events, `data: {"change":"`+id+`","environment":"production","state":"pending"}`, 5*time.Second)
	if f := flagOf(t, h, "production", "banner"); f["defaultVariant"] != "plain" {
		t.Fatalf("the change applied before its approvals: %v", f["defaultVariant"])
	}

	for _, c := range []struct {
		name, token, action string
		status              int
		message             string
	}{
		{"the requester", editor, "approve", 403, "role editor may not promotions.approve"},
		{"outside the groups", eve, "approve", 403, "gate approvals: approvals count only from members of devops-team; this token's groups are [marketing]"},
		{"a viewer cancels", h.groupToken("vic", "viewer"), "cancel", 403, "role viewer may not flags.write"},
		{"an approver cancels another's", bob, "cancel", 403, "role approver may not flags.write"},
		{"another editor cancels", h.groupToken("ed2", "editor"), "cancel", 403, "only the requester of change request " + id + " or an admin may cancel it"},
		{"unknown request", bob, "approve", 404, "no flag change request"},
	} {
		path := changes + id + "/" + c.action
		if c.status == 404 {
			path = changes + "fch_nope/" + c.action
		}
		r := h.must(c.status, "POST", path, c.token, nil)
		if msg := r.err(t).Message; !strings.Contains(msg, c.message) {
			t.Errorf("%s: %q, want it to say %q", c.name, msg, c.message)
		}
	}
	// The requester may not approve their own even as an approver.
	self := h.groupToken("sam", "admin", "devops-team")
	own := h.requestChange(self, "theme", map[string]any{"defaultVariant": "light"})
	r = h.must(http.StatusForbidden, "POST", changes+own["id"].(string)+"/approve", self, nil)
	if msg := r.err(t).Message; !strings.Contains(msg, "the requester may not approve their own change request (allowSelfApproval is false)") {
		t.Errorf("self-approval: %q", msg)
	}

	first := h.must(http.StatusOK, "POST", changes+id+"/approve", bob, nil).json(t)
	if first["state"] != "pending" || len(first["approvals"].(map[string]any)["given"].([]any)) != 1 {
		t.Fatalf("after one of two approvals: %v %v", first["state"], first["approvals"])
	}
	if f := flagOf(t, h, "production", "banner"); f["defaultVariant"] != "plain" {
		t.Fatalf("applied after one approval of two")
	}
	r = h.must(http.StatusConflict, "POST", changes+id+"/approve", bob, nil)
	if msg := r.err(t).Message; !strings.Contains(msg, "already approved this change request") {
		t.Errorf("second approval by the same token: %q", msg)
	}
	done := h.must(http.StatusOK, "POST", changes+id+"/approve", carol, nil).json(t)
	if done["state"] != "applied" {
		t.Fatalf("after two approvals: %v", done["state"])
	}
	awaitLines(t, events, 5*time.Second, `data: {"change":"`+id+`","environment":"production","state":"applied"}`, "event: flags")
	if f := flagOf(t, h, "production", "banner"); f["defaultVariant"] != "loud" || f["override"] == nil {
		t.Fatalf("applied change not in effect: %v %v", f["defaultVariant"], f["override"])
	}
	for _, action := range []string{"approve", "reject", "cancel"} {
		h.must(http.StatusConflict, "POST", changes+id+"/"+action, adminToken, nil)
	}

	// Listing, filtered by state; show.
	list := h.must(http.StatusOK, "GET", changes[:len(changes)-1]+"?state=pending", bob, nil).json(t)["changes"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != own["id"] {
		t.Errorf("pending: %v", list)
	}
	h.must(http.StatusBadRequest, "GET", changes[:len(changes)-1]+"?state=bogus", bob, nil)
	if got := h.must(http.StatusOK, "GET", changes+id, adminToken, nil).json(t); got["state"] != "applied" {
		t.Errorf("show: %v", got["state"])
	}
	h.must(http.StatusNotFound, "GET", "/api/v1/environments/staging/flags/changes/"+id, adminToken, nil)

	// Reject and cancel end a request; each transition is audited with its ID.
	rj := h.requestChange(editor, "ratio", map[string]any{"defaultVariant": "high"})
	if got := h.must(http.StatusOK, "POST", changes+rj["id"].(string)+"/reject", bob, map[string]string{"reason": "not now"}).json(t); got["state"] != "rejected" ||
		got["reason"] != "rejected by bob (token "+strings.TrimPrefix(got["reason"].(string), "rejected by bob (token ") {
		t.Errorf("reject: %v", got)
	}
	cn := h.requestChange(editor, "ratio", map[string]any{"state": "DISABLED"})
	if got := h.must(http.StatusOK, "POST", changes+cn["id"].(string)+"/cancel", editor, nil).json(t); got["state"] != "cancelled" {
		t.Errorf("cancel: %v", got)
	}
	audit := h.must(http.StatusOK, "GET", "/api/v1/audit", adminToken, nil).json(t)["entries"].([]any)
	actions := map[string][]string{}
	for _, e := range audit {
		e := e.(map[string]any)
		if a := e["action"].(string); strings.HasPrefix(a, "flag.change-") {
			actions[e["target"].(string)] = append(actions[e["target"].(string)], a)
		}
	}
	for target, want := range map[string][]string{
		id:                 {"flag.change-request", "flag.change-approve", "flag.change-approve", "flag.change-apply"},
		rj["id"].(string):  {"flag.change-request", "flag.change-reject"},
		cn["id"].(string):  {"flag.change-request", "flag.change-cancel"},
		own["id"].(string): {"flag.change-request"},
	} {
		if diff := cmp.Diff(want, actions[target]); diff != "" {
			t.Errorf("audit of %s (-want +got):\n%s", target, diff)
		}
	}

	// Open environments keep applying directly.
	h.must(http.StatusOK, "PATCH", "/api/v1/environments/development/flags/banner", editor, map[string]any{"defaultVariant": "loud"})
}

// TestFlagChangeStale: approvals are tied to the flag's definition. A
// request whose flag's override changed (another request applied) ends
// superseded; one whose flag's variants a new release changed ends stale;
// neither applies.
func TestFlagChangeStale(t *testing.T) {
	h := start(t)
	rel := h.upload(gatedShop("{ required: 1 }", nil))
	h.setRelease("development", rel)
	bob := h.groupToken("bob", "approver")
	h.promoteProd(rel, bob)
	editor := h.groupToken("ed", "editor")

	a := h.requestChange(editor, "banner", map[string]any{"defaultVariant": "loud"})
	b := h.requestChange(editor, "banner", map[string]any{"state": "DISABLED"})
	c := h.requestChange(editor, "theme", map[string]any{"defaultVariant": "light"})
	h.must(http.StatusOK, "POST", changes+a["id"].(string)+"/approve", bob, nil)
	if got := h.must(http.StatusOK, "GET", changes+b["id"].(string), bob, nil).json(t); got["state"] != "superseded" ||
		got["reason"] != "superseded by change request "+a["id"].(string) {
		t.Errorf("the other request for the flag: %v %v", got["state"], got["reason"])
	}

	// A release that changes theme's variants: c no longer applies.
	rel2 := h.upload(gatedShop("{ required: 1 }", func(files map[string]string) {
		files["flags.yaml"] = strings.Replace(files["flags.yaml"], `dark: {bg: "#000"}`, `dark: {bg: "#111"}`, 1)
	}))
	h.promoteProd(rel2, bob)
	if got := h.must(http.StatusOK, "GET", changes+c["id"].(string), bob, nil).json(t); got["state"] != "stale" ||
		got["reason"] != "release "+rel2+" changed the flag's variants" {
		t.Errorf("after the release: %v %v", got["state"], got["reason"])
	}
	r := h.must(http.StatusConflict, "POST", changes+c["id"].(string)+"/approve", bob, nil)
	if msg := r.err(t).Message; !strings.Contains(msg, "is stale: it can no longer change") {
		t.Errorf("approving a stale request: %q", msg)
	}
	if f := flagOf(t, h, "production", "theme"); f["defaultVariant"] != "dark" {
		t.Errorf("a stale change applied: %v", f["defaultVariant"])
	}
	// A release that keeps banner's variants keeps its override and its
	// requests valid.
	d := h.requestChange(editor, "banner", map[string]any{"defaultVariant": "plain"})
	rel3 := h.upload(gatedShop("{ required: 1 }", func(files map[string]string) {
		files["config/production.yaml"] = "logging:\n  level: warn\n"
	}))
	h.promoteProd(rel3, bob)
	if got := h.must(http.StatusOK, "POST", changes+d["id"].(string)+"/approve", bob, nil).json(t); got["state"] != "applied" {
		t.Errorf("a request across a release that kept the flag: %v", got["state"])
	}
}

// TestFlagChangeDefaultGate: a restricted environment whose promotion
// block has no approvals still needs one, from an approver or admin
// other than the requester.
func TestFlagChangeDefaultGate(t *testing.T) {
	h := start(t)
	rel := h.upload(gatedShop("", nil))
	h.promoteProd(rel)
	editor := h.groupToken("ed", "editor")
	fc := h.requestChange(editor, "banner", map[string]any{"state": "DISABLED"})
	if got := fc["approvals"].(map[string]any)["required"]; got != 1.0 {
		t.Fatalf("required %v, want 1", got)
	}
	if got := h.must(http.StatusOK, "POST", changes+fc["id"].(string)+"/approve", adminToken, nil).json(t); got["state"] != "applied" {
		t.Errorf("state %v", got["state"])
	}
}

// TestFlagChangeConcurrentApprovals: of many concurrent last approvals
// exactly one applies the change; the others are told it is applied (409).
// On SQLite and, when configured, PostgreSQL.
func TestFlagChangeConcurrentApprovals(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var h *harness
			if backend == "postgres" {
				h = startPostgres(t, pgtest.URL(t))
			} else {
				h = start(t)
			}
			rel := h.upload(gatedShop("{ required: 2 }", nil))
			first := h.groupToken("first", "approver")
			h.promoteProd(rel, first, h.groupToken("second", "approver"))
			editor := h.groupToken("ed", "editor")
			const n = 8
			approvers := make([]string, n)
			for i := range approvers {
				approvers[i] = h.groupToken(fmt.Sprintf("a%d", i), "approver")
			}
			for round := range 3 {
				fc := h.requestChange(editor, "banner", map[string]any{"state": []string{"DISABLED", "ENABLED"}[round%2]})
				id := fc["id"].(string)
				h.must(http.StatusOK, "POST", changes+id+"/approve", first, nil)
				var wg sync.WaitGroup
				statuses := make([]int, n)
				start := make(chan struct{})
				for i, tok := range approvers {
					wg.Go(func() {
						<-start
						statuses[i] = h.call("POST", changes+id+"/approve", tok, nil).status
					})
				}
				close(start)
				wg.Wait()
				ok, conflict := 0, 0
				for _, s := range statuses {
					switch s {
					case http.StatusOK:
						ok++
					case http.StatusConflict:
						conflict++
					}
				}
				if ok != 1 || conflict != n-1 {
					t.Fatalf("round %d: %d approvals succeeded, %d conflicted (statuses %v); want 1 and %d", round, ok, conflict, statuses, n-1)
				}
				applies := 0
				for _, e := range h.must(http.StatusOK, "GET", "/api/v1/audit", adminToken, nil).json(t)["entries"].([]any) {
					if e := e.(map[string]any); e["target"] == id && e["action"] == "flag.change-apply" {
						applies++
					}
				}
				if applies != 1 {
					t.Fatalf("round %d: %d flag.change-apply entries, want 1", round, applies)
				}
				got := h.must(http.StatusOK, "GET", changes+id, adminToken, nil).json(t)
				if got["state"] != "applied" || len(got["approvals"].(map[string]any)["given"].([]any)) != 2 {
					t.Fatalf("round %d: %v with approvals %v", round, got["state"], got["approvals"])
				}
			}
		})
	}
}

// awaitLines waits until every one of want came on lines, in any order.
func awaitLines(t *testing.T, lines <-chan string, within time.Duration, want ...string) {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	deadline := time.After(within)
	for len(missing) > 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended without %v", missing)
			}
			delete(missing, l)
		case <-deadline:
			t.Fatalf("no %v within %v", missing, within)
		}
	}
}
