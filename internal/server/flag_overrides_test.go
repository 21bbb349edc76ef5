package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFlagOverrideValidation(t *testing.T) {
	h, _ := seeded(t)
	sdk, _ := h.token("app", "sdk", "development")
	stagingEditor, _ := h.token("staging editor", "editor", "staging")
	viewer, _ := h.token("viewer", "viewer")
	path := "/api/v1/environments/development/flags/banner"
	runCases(t, h, []apiCase{
		{name: "state not ENABLED or DISABLED", method: "PATCH", path: path, body: map[string]any{"state": "ON"}, status: 422, code: "unprocessable", fields: []string{"state"}},
		{name: "no such variant", method: "PATCH", path: path, body: map[string]any{"defaultVariant": "green"}, status: 422, code: "unprocessable", fields: []string{"defaultVariant"}},
		{name: "both", method: "PATCH", path: path, body: map[string]any{"state": "on", "defaultVariant": "green"}, status: 422, fields: []string{"state", "defaultVariant"}},
		{name: "unknown operator", method: "PATCH", path: path, body: map[string]any{"targeting": map[string]any{"nope": []int{1}}}, status: 422, fields: []string{"targeting"}},
		{name: "targeting not a rule", method: "PATCH", path: path, body: map[string]any{"targeting": []int{1}}, status: 422, fields: []string{"targeting"}},
		{name: "state not a string", method: "PATCH", path: path, body: map[string]any{"state": 1}, status: 400, code: "invalid", fields: []string{"state"}},
		{name: "nothing to change", method: "PATCH", path: path, body: map[string]any{}, status: 400, fields: []string{"body"}},
		{name: "unknown field", method: "PATCH", path: path, body: map[string]any{"variants": map[string]any{}}, status: 400, fields: []string{"variants"}},
		{name: "no such flag", method: "PATCH", path: "/api/v1/environments/development/flags/nope", body: map[string]any{"state": "DISABLED"}, status: 404, code: "not_found"},
		{name: "no such environment", method: "PATCH", path: "/api/v1/environments/nope/flags/banner", body: map[string]any{"state": "DISABLED"}, status: 404},
		{name: "never an sdk key", method: "PATCH", path: path, token: sdk, body: map[string]any{"state": "DISABLED"}, status: 403},
		{name: "a viewer", method: "PATCH", path: path, token: viewer, body: map[string]any{"state": "DISABLED"}, status: 403},
		{name: "an editor of another environment", method: "PATCH", path: path, token: stagingEditor, body: map[string]any{"state": "DISABLED"}, status: 403},
	})
	// Nothing was stored or audited.
	if r := h.must(200, "GET", "/api/v1/environments/development/flags", adminToken, nil); strings.Contains(string(r.body), `"override"`) {
		t.Errorf("an override after refused requests: %s", r.body)
	}
	if got := auditActions(t, h); strings.Contains(strings.Join(got, " "), "flag.") {
		t.Errorf("audited: %v", got)
	}
}

func auditActions(t *testing.T, h *harness) []string {
	t.Helper()
	var list struct {
		Entries []struct {
			Action  string
			Details map[string]any
		}
	}
	r := h.must(200, "GET", "/api/v1/audit", adminToken, nil)
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Entries {
		out = append(out, e.Action)
	}
	return out
}

// TestFlagOverrides: an override changes one environment at once, is
// audited and announced, survives a release that keeps the flag's variants
// and is dropped (audited) by one that changes them.
func TestFlagOverrides(t *testing.T) {
	h, _ := seeded(t)
	sdk, _ := h.token("app", "sdk", "development")
	editor, _ := h.token("dev editor", "editor", "development")
	eval := func(key string) map[string]any {
		t.Helper()
		return ofrep(h, "/ofrep/v1/evaluate/flags/"+key, sdk, map[string]any{"context": map[string]any{"targetingKey": "u1", "plan": "pro"}}).json(t)
	}
	events := openEvents(t, h, sdk, "?ofrep=true")

	r := h.must(200, "PATCH", "/api/v1/environments/development/flags/banner", editor, map[string]any{"defaultVariant": "loud"})
	var flag struct {
		DefaultVariant string
		Override       struct {
			DefaultVariant string
			UpdatedBy      string
		}
	}
	if err := json.Unmarshal(r.body, &flag); err != nil || flag.DefaultVariant != "loud" || flag.Override.DefaultVariant != "loud" ||
		!strings.Contains(flag.Override.UpdatedBy, "dev editor") {
		t.Errorf("PATCH answered %s", r.body)
	}
	if got := eval("banner"); got["value"] != "WELCOME!" {
		t.Errorf("after the override: %v", got)
	}
	if l := nextLine(t, events); !strings.Contains(l, `"flags":["banner"]`) {
		t.Errorf("event %q", l)
	}
	// Staging is untouched.
	stagingKey, _ := h.token("staging app", "sdk", "staging")
	if got := ofrep(h, "/ofrep/v1/evaluate/flags/banner", stagingKey, map[string]any{"context": map[string]any{}}).json(t); got["value"] != "Welcome" {
		t.Errorf("staging: %v", got)
	}
	// A second PATCH keeps what it does not name.
	h.must(200, "PATCH", "/api/v1/environments/development/flags/banner", editor,
		map[string]any{"targeting": map[string]any{"if": []any{map[string]any{"==": []any{map[string]any{"var": "plan"}, "pro"}}, "plain", nil}}})
	if got := eval("banner"); got["value"] != "Welcome" || got["reason"] != "TARGETING_MATCH" {
		t.Errorf("targeting override: %v", got)
	}
	h.must(200, "PATCH", "/api/v1/environments/development/flags/banner", adminToken, map[string]any{"targeting": nil})
	if got := eval("banner"); got["value"] != "WELCOME!" || got["reason"] != "STATIC" {
		t.Errorf("targeting removed, default variant kept: %v", got)
	}
	h.must(200, "PATCH", "/api/v1/environments/development/flags/theme", editor, map[string]any{"state": "DISABLED"})
	if got := eval("theme"); got["reason"] != "DISABLED" {
		t.Errorf("disabled: %v", got)
	}

	// A release that keeps the variants keeps the overrides.
	h.setRelease("development", h.upload(shop(9999)))
	if got := eval("banner"); got["value"] != "WELCOME!" {
		t.Errorf("after a config-only release: %v", got)
	}
	// One that changes banner's variants drops its override, not theme's.
	files := shop(9999)
	files["flags.yaml"] = strings.Replace(shopFlags, `loud: "WELCOME!"`, `loud: "HELLO!"`, 1)
	h.setRelease("development", h.upload(files))
	if got := eval("banner"); got["value"] != "Welcome" {
		t.Errorf("after a release changing the variants: %v", got)
	}
	if got := eval("theme"); got["reason"] != "DISABLED" {
		t.Errorf("theme's override did not survive: %v", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := auditActions(t, h)
		n := map[string]int{}
		for _, a := range got {
			n[a]++
		}
		if diff := cmp.Diff(map[string]int{"flag.override": 4, "flag.override-drop": 1},
			map[string]int{"flag.override": n["flag.override"], "flag.override-drop": n["flag.override-drop"]}); diff == "" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("audit (-want +got):\n%s", diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var list struct {
		Flags []struct {
			Key      string
			Override *struct{ State string }
		}
	}
	_ = json.Unmarshal(h.must(200, "GET", "/api/v1/environments/development/flags", adminToken, nil).body, &list)
	var overridden []string
	for _, f := range list.Flags {
		if f.Override != nil {
			overridden = append(overridden, f.Key)
		}
	}
	if diff := cmp.Diff([]string{"theme"}, overridden); diff != "" {
		t.Errorf("overridden flags (-want +got):\n%s", diff)
	}
	if r := h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil); r.json(t)["ok"] != true {
		t.Errorf("verify: %s", r.body)
	}
}

// openEvents opens an environment's event stream (development) and
// returns its data lines.
func openEvents(t *testing.T, h *harness, token, query string) <-chan string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", h.hs.URL+"/api/v1/environments/development/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.hs.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events: %v %v", resp, err)
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		buf := make([]byte, 64<<10)
		var pending string
		for {
			n, err := resp.Body.Read(buf)
			pending += string(buf[:n])
			for {
				i := strings.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				if l := pending[:i]; strings.HasPrefix(l, "data:") {
					lines <- l
				}
				pending = pending[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // subscribed
	return lines
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(2 * time.Second):
		t.Fatal("no event within 2 s")
	}
	return ""
}
