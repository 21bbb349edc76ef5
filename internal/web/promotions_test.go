package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitRelease waits (bounded) until env's current release is id.
func (h *harness) waitRelease(env, id string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range h.srv.Environments() {
			if e.Name == env && e.Release == id {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("%s never got release %s", env, id)
}

func TestApproveAsTwoUsers(t *testing.T) {
	h := seeded(t)
	id := h.openProduction()
	ana := h.signIn(h.token("ana", "approver", nil, "devops"))
	ben := h.signIn(h.token("ben", "approver", nil, "seniors"))
	viewer := h.signIn(h.token("vera", "viewer", nil))

	if body := viewer.must("/promotions"); strings.Contains(body, "/approve") || !strings.Contains(body, id) {
		t.Fatal("a viewer sees approve buttons, or not the promotion")
	}
	if st, _ := viewer.post("/promotions/"+id+"/approve", nil); st != http.StatusForbidden {
		t.Fatalf("viewer approve: %d", st)
	}
	body := ana.must("/promotions")
	if !strings.Contains(body, `action="/promotions/`+id+`/approve"`) || !strings.Contains(body, "0 of 2 given") {
		t.Fatalf("approver's page: %s", body)
	}
	if st, body := ana.post("/promotions/"+id+"/checklist/0", nil); st != http.StatusSeeOther {
		t.Fatalf("tick: %d %s", st, body)
	}
	if st, body := ana.post("/promotions/"+id+"/approve", nil); st != http.StatusSeeOther {
		t.Fatalf("ana approve: %d %s", st, body)
	}
	if st, body := ana.post("/promotions/"+id+"/approve", nil); st == http.StatusSeeOther {
		t.Fatalf("the same approver counted twice: %s", body)
	}
	if st, body := ben.post("/promotions/"+id+"/approve", nil); st != http.StatusSeeOther {
		t.Fatalf("ben approve: %d %s", st, body)
	}
	h.waitRelease("production", h.release)
	if body := ana.must("/promotions"); !strings.Contains(body, "applied") {
		t.Fatal("the promotion is not shown applied")
	}
	admin := h.signIn(adminToken)
	audit := admin.must("/audit")
	for _, want := range []string{"Chain verified", "promotion.approve", "ana (token", "ben (token"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
}
