package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
)

// flaggedProduction is flagged with its release promoted into production
// (restricted, two approvals from devops and seniors).
func flaggedProduction(t *testing.T) *harness {
	h := flagged(t)
	id := h.openProduction()
	ctx := context.Background()
	if _, err := h.app.TickChecklist(ctx, h.sys, id, 0); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*auth.Principal{{TokenID: "tok_x", Name: "x", Role: auth.Approver, Groups: []string{"devops"}},
		{TokenID: "tok_y", Name: "y", Role: auth.Approver, Groups: []string{"seniors"}}} {
		if _, err := h.app.Approve(ctx, who, id); err != nil {
			t.Fatal(err)
		}
	}
	h.waitRelease("production", h.release)
	return h
}

var changeID = regexp.MustCompile(`id="(fch_[0-9a-f]+)"`)

// TestFlagChangeRequestsInTheUI: in restricted production a toggle opens a
// change request; the page lists it with the buttons each user may use;
// two approvers from the groups apply it; forms need their CSRF token.
func TestFlagChangeRequestsInTheUI(t *testing.T) {
	h := flaggedProduction(t)
	ed := h.signIn(h.token("ed", "editor", nil))
	ana := h.signIn(h.token("ana", "approver", nil, "devops"))
	ben := h.signIn(h.token("ben", "approver", nil, "seniors"))
	vera := h.signIn(h.token("vera", "viewer", nil))

	if body := ed.must("/environments/development/flags"); strings.Contains(body, "restricted-note") {
		t.Error("an open environment's page speaks of change requests")
	}
	if st, body := ed.post("/environments/production/flags/banner", url.Values{"state": {"DISABLED"}}); st != http.StatusSeeOther {
		t.Fatalf("toggle in production: %d %s", st, body)
	}
	body := ed.must("/environments/production/flags")
	m := changeID.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "restricted-note") || !strings.Contains(body, "0 of 2 approvals given (groups: devops, seniors)") ||
		!strings.Contains(body, "state DISABLED") {
		t.Fatalf("production's flags page after the toggle: %s", body)
	}
	id := m[1]
	approve, cancel := `action="/environments/production/flags/changes/`+id+`/approve"`, `action="/environments/production/flags/changes/`+id+`/cancel"`
	for _, c := range []struct {
		who              *user
		name             string
		approve, cancels bool
	}{{ed, "the requester", false, true}, {ana, "an approver", true, false}, {vera, "a viewer", false, false}} {
		body := c.who.must("/environments/production/flags")
		if got := strings.Contains(body, approve); got != c.approve {
			t.Errorf("%s sees approve: %v", c.name, got)
		}
		if got := strings.Contains(body, cancel); got != c.cancels {
			t.Errorf("%s sees cancel: %v", c.name, got)
		}
	}
	if st, _ := vera.post("/environments/production/flags/changes/"+id+"/approve", nil); st != http.StatusForbidden {
		t.Errorf("viewer approve: %d", st)
	}
	if st, _ := ana.post("/environments/production/flags/changes/"+id+"/approve", url.Values{"csrf": {"forged"}}); st != http.StatusForbidden {
		t.Errorf("approve without the CSRF token: %d", st)
	}
	if st, body := ana.post("/environments/production/flags/changes/"+id+"/approve", nil); st != http.StatusSeeOther {
		t.Fatalf("ana approve: %d %s", st, body)
	}
	if body := ana.must("/environments/production/flags"); !strings.Contains(body, "1 of 2 approvals given") || strings.Contains(body, approve) {
		t.Errorf("after ana's approval, her page: %s", body)
	}
	if state := flagState(t, h, "production", "banner"); state != "ENABLED" {
		t.Fatalf("applied after one approval: %s", state)
	}
	if st, body := ben.post("/environments/production/flags/changes/"+id+"/approve", nil); st != http.StatusSeeOther {
		t.Fatalf("ben approve: %d %s", st, body)
	}
	if state := flagState(t, h, "production", "banner"); state != "DISABLED" {
		t.Fatalf("not applied after two approvals: %s", state)
	}
	body = ben.must("/environments/production/flags")
	if !strings.Contains(body, `id="no-changes"`) || !regexp.MustCompile(`<tr id="`+id+`">.*applied`).MatchString(body) {
		t.Errorf("after the apply: %s", body)
	}

	// Reject with a reason, cancel one's own.
	ed.post("/environments/production/flags/banner", url.Values{"defaultVariant": {"loud"}})
	rj := changeID.FindStringSubmatch(ed.must("/environments/production/flags"))[1]
	if st, body := ben.post("/environments/production/flags/changes/"+rj+"/reject", url.Values{"reason": {"not today"}}); st != http.StatusSeeOther {
		t.Fatalf("reject: %d %s", st, body)
	}
	ed.post("/environments/production/flags/banner", url.Values{"defaultVariant": {"loud"}})
	cn := changeID.FindStringSubmatch(ed.must("/environments/production/flags"))[1]
	if st, body := ed.post("/environments/production/flags/changes/"+cn+"/cancel", nil); st != http.StatusSeeOther {
		t.Fatalf("cancel: %d %s", st, body)
	}
	for id, want := range map[string]domain.FlagChangeState{rj: domain.FlagChangeRejected, cn: domain.FlagChangeCancelled} {
		fc, err := h.app.GetFlagChange(context.Background(), h.sys, "production", id)
		if err != nil || fc.State != want {
			t.Errorf("%s: %v %v, want %s", id, fc.State, err, want)
		}
	}
	if st, _ := ed.post("/environments/production/flags/changes/"+cn+"/bogus", nil); st != http.StatusNotFound {
		t.Errorf("an unknown action: %d", st)
	}
}

// flagState is the state of flag key in env as the server has it.
func flagState(t *testing.T, h *harness, env, key string) string {
	t.Helper()
	raw, err := h.srv.FlagList(env)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"key":"` + key + `","type":"[a-z]+","state":"([A-Z]+)"`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("no flag %s in %s", key, raw)
	}
	return string(m[1])
}
