package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDataOperations: `data copy|seed --server` records its operations as
// audit entries data.copy / data.seed, for editors and admins of the
// target, never into a live environment.
func TestDataOperations(t *testing.T) {
	h, _ := seeded(t)
	editor, _ := h.token("ci", "editor", "development")
	digest := "sha256:" + strings.Repeat("0f", 32)
	path := "/api/v1/environments/development/data-operations"
	h.must(http.StatusCreated, "POST", path, editor, map[string]any{"kind": "copy", "phase": "start", "from": "staging",
		"tables": []string{"customers", "orders"}, "atomic": true, "digest": digest})
	h.must(http.StatusCreated, "POST", path, editor, map[string]any{"kind": "copy", "phase": "done", "from": "staging",
		"tables": []string{"customers", "orders"}, "atomic": true, "digest": digest,
		"rows": map[string]int{"customers": 500, "orders": 1500}, "copied": []string{"customers", "orders"}})
	h.must(http.StatusCreated, "POST", path, editor, map[string]any{"kind": "seed", "phase": "done", "seed": 42,
		"tables": []string{"customers"}, "digest": digest, "rows": map[string]int{"customers": 10}})

	var log struct {
		Entries []struct {
			Actor, Action, Target string
			Details               map[string]any
		}
	}
	if err := json.Unmarshal(h.must(http.StatusOK, "GET", "/api/v1/audit?limit=1000", adminToken, nil).body, &log); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, e := range log.Entries {
		if strings.HasPrefix(e.Action, "data.") {
			e.Details["action"], e.Details["actor"], e.Details["target"] = e.Action, e.Actor, e.Target
			got = append(got, e.Details)
		}
	}
	want := []map[string]any{
		{"action": "data.copy", "actor": got0(got, "actor"), "target": "development", "environment": "development", "phase": "start",
			"from": "staging", "to": "development", "atomic": true, "tables": []any{"customers", "orders"}, "digest": digest},
		{"action": "data.copy", "actor": got0(got, "actor"), "target": "development", "environment": "development", "phase": "done",
			"from": "staging", "to": "development", "atomic": true, "tables": []any{"customers", "orders"}, "digest": digest,
			"rows": map[string]any{"customers": 500.0, "orders": 1500.0}, "copied": []any{"customers", "orders"}},
		{"action": "data.seed", "actor": got0(got, "actor"), "target": "development", "environment": "development", "phase": "done",
			"seed": 42.0, "tables": []any{"customers"}, "digest": digest, "rows": map[string]any{"customers": 10.0}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit entries (-want +got):\n%s", diff)
	}
	if a, _ := got0(got, "actor").(string); !strings.HasPrefix(a, "ci (token ") {
		t.Errorf("actor %q", a)
	}

	// Refusals: a live target, an unknown source, a malformed body, another
	// environment than the token's.
	admin := adminToken
	h.must(http.StatusConflict, "POST", "/api/v1/environments/production/data-operations", admin, map[string]any{"kind": "copy", "phase": "start",
		"from": "staging", "tables": []string{"customers"}, "digest": digest})
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"kind": "copy", "phase": "start", "from": "nowhere", "tables": []string{"t"}, "digest": digest}, "from"},
		{map[string]any{"kind": "copy", "phase": "start", "from": "development", "tables": []string{"t"}, "digest": digest}, "from"},
		{map[string]any{"kind": "drop", "phase": "start", "tables": []string{"t"}, "digest": digest}, "kind"},
		{map[string]any{"kind": "seed", "phase": "later", "tables": []string{"t"}, "digest": digest}, "phase"},
		{map[string]any{"kind": "seed", "phase": "done", "tables": []string{"t"}, "digest": "md5:x"}, "digest"},
		{map[string]any{"kind": "seed", "phase": "done", "tables": []string{}, "digest": digest}, "tables"},
		{map[string]any{"kind": "seed", "phase": "done", "tables": []string{"t"}, "digest": digest, "rows": map[string]int{"u": 1}}, "rows"},
	} {
		r := h.call("POST", path, admin, tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"`+tc.field+`"`) {
			t.Errorf("%v: %d %s, want 400 naming %s", tc.body, r.status, r.body, tc.field)
		}
	}
	h.must(http.StatusForbidden, "POST", "/api/v1/environments/staging/data-operations", editor, map[string]any{"kind": "seed", "phase": "start",
		"tables": []string{"t"}, "digest": digest})
}

func got0(got []map[string]any, k string) any {
	if len(got) == 0 {
		return nil
	}
	return got[0][k]
}
