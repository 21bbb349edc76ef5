package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
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

func TestAuditFilterPages(t *testing.T) {
	h := start(t)
	for i := range 130 {
		h.token(fmt.Sprintf("t%03d", i), "viewer", nil)
	}
	admin := h.signIn(adminToken)
	first := admin.must("/audit?action=token.create")
	rows := auditRows(first)
	m := regexp.MustCompile(`<a href="([^"]+)" id="older">`).FindStringSubmatch(first)
	if len(rows) != 100 || m == nil {
		t.Fatalf("first page: %d rows, older link %v", len(rows), m)
	}
	second := admin.must(html.UnescapeString(m[1]))
	more := auditRows(second)
	total := 0 // the 130 and the bootstrap admin's
	for _, a := range mustActions(h) {
		if a == "token.create" {
			total++
		}
	}
	if len(more) != total-100 || total < 130 || strings.Contains(second, `id="older"`) {
		t.Fatalf("second page: %d rows of %d", len(more), total)
	}
	if atoi(rows[99].seq) <= atoi(more[0].seq) || !strings.Contains(second, "action=token.create") {
		t.Errorf("pages overlap or lose the filter: %s then %s", rows[99].seq, more[0].seq)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func mustActions(h *harness) []string {
	entries, _, err := h.app.ListAudit(context.Background(), h.sys, 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return out
}
