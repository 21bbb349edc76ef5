package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var auditRowRE = regexp.MustCompile(`<tr><td>(\d+)</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>`)

type auditRowT struct{ seq, actor, action, target string }

func auditRows(body string) []auditRowT {
	var out []auditRowT
	for _, m := range auditRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, auditRowT{m[1], m[2], m[3], m[4]})
	}
	return out
}

func TestAuditFilters(t *testing.T) {
	h := seeded(t)
	ana := h.token("ana", "approver", nil, "devops")
	h.signIn(ana).post("/environments/production/promote", map[string][]string{"release": {h.release}})
	admin := h.signIn(adminToken)
	cases := []struct {
		query string
		keep  func(auditRowT) bool
	}{
		{"action=environment.set-release", func(r auditRowT) bool { return r.action == "environment.set-release" }},
		{"action=promotion", func(r auditRowT) bool { return strings.HasPrefix(r.action, "promotion.") }},
		{"actor=ANA", func(r auditRowT) bool { return strings.Contains(r.actor, "ana") }},
		{"target=DB_PASS", func(r auditRowT) bool { return strings.Contains(r.target, "DB_PASSWORD") }},
		// a release names every environment it defines
		{"environment=production", func(r auditRowT) bool {
			return strings.HasPrefix(r.action, "promotion.") || r.action == "release.create"
		}},
		{"environment=development&action=environment.set-release", func(r auditRowT) bool {
			return r.action == "environment.set-release" && r.target == "development"
		}},
		{"actor=nobody-at-all", func(auditRowT) bool { return false }},
	}
	for _, c := range cases {
		// The promotion runner may still write: retry until the log held
		// still around the filtered page.
		var all, got []auditRowT
		var body string
		for range 20 {
			all = auditRows(admin.must("/audit"))
			body = admin.must("/audit?" + c.query)
			got = auditRows(body)
			if len(auditRows(admin.must("/audit"))) == len(all) {
				break
			}
		}
		var want []auditRowT
		for _, r := range all {
			if c.keep(r) {
				want = append(want, r)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d rows, want %d: %v", c.query, len(got), len(want), got)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: row %d is %v, want %v", c.query, i, got[i], want[i])
			}
		}
		if !strings.Contains(body, `id="filtered"`) {
			t.Errorf("%s: the page does not say it is filtered", c.query)
		}
	}
	if b := admin.must("/audit?environment=production"); !strings.Contains(b, "<option selected>production</option>") {
		t.Error("the environment filter is not kept in the form")
	}
	// A viewer may not read the audit log, filtered or not.
	if st, _ := h.signIn(h.token("vi", "viewer", nil)).get("/audit?action=promotion"); st != http.StatusForbidden {
		t.Errorf("viewer's filtered audit: %d", st)
	}
}
